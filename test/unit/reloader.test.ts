import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Fleet, type ReloadReport } from '../../src/fleet/fleet.js';
import { Reloader } from '../../src/fleet/reloader.js';
import { createLogger } from '../../src/log.js';
import { test } from '../support/uvu.js';

test('a reload that throws resolves as a failed reload, logged and reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-reloader-'));
  try {
    const file = join(dir, 'mcp-proxy.yaml');
    writeFileSync(file, 'servers: {}\n');
    let logged = '';
    const log = createLogger('info', (lines) => (logged += lines));
    const fleet = new Fleet({ log, env: {} });
    // Mocked: nothing a manifest can hold makes applying it throw any more (the loader refuses what did);
    // this stands for the next bug that would. A watcher, SIGHUP or boot starts reloads with no one to
    // catch what they reject with: it would end the process.
    fleet.apply = () => Promise.reject(new Error('applying broke'));
    const reports: ReloadReport[] = [];
    const reloader = new Reloader(file, fleet, {}, log, {});
    reloader.onreport = (report) => reports.push(report);
    const report = await reloader.reload(true);
    assert.is(report?.result, 'failed');
    assert.equal(report?.errors, ['applying broke']);
    assert.equal(reports, [report]);
    assert.is(fleet.lastReloadReport, report);
    await new Promise((resolve) => setImmediate(resolve)); // the logger writes once per tick
    assert.match(logged, /"event":"reload","result":"failed".*"errors":\["applying broke"\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
