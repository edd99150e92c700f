import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { fixtureCommand, muteServer, serversOf, startProxy, waitFor } from '../support/proxy.js';
import { test } from '../support/uvu.js';

// /servers says that a reload is under way, and what it waits for, while a slow start holds its report.

const echo = fixtureCommand('echo');
const steady = `  steady: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }\n`;

test('a reload waiting for a server to start is listed as applying, with the server it waits for', async () => {
  const proxy = await startProxy(`servers:\n${steady}`);
  const pidFile = join(proxy.dir, 'mute.pid');
  const mute = muteServer('mute', pidFile);
  const listing = () => serversOf(proxy.url);
  try {
    assert.is((await listing()).applying, null);
    const before = Date.now();
    writeFileSync(proxy.manifestPath, `servers:\n${steady}${mute}`);
    await waitFor(() => existsSync(pidFile), 10_000, 'the reload to start the mute server');
    const during = await listing();
    assert.equal(during.applying?.waitingFor, ['mute']);
    assert.ok(Date.parse(during.applying!.since) >= before - 1000, during.applying!.since);
    assert.is(during.reload?.result, 'applied', 'the report is still the boot one');

    // Undone: the mute start is superseded, and the reload that undid it is applied.
    writeFileSync(proxy.manifestPath, `servers:\n${steady}`);
    await waitFor(async () => (await listing()).applying === null, 10_000, 'the reloads to end');
  } finally {
    await proxy.stop();
  }
});

test.run();
