import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fromRoot } from '../support/paths.js';
import {
  fixtureCommand,
  startHttpFixture,
  startProxy,
  type HttpFixture,
  type RunningProxy,
} from '../support/proxy.js';

// The MCP conformance suite (server scenarios) must pass through the proxy as it passes directly against
// the same upstream: for a stdio upstream in each isolation mode, and for a remote one.
// The suite's 0.1.x runner needs Node 22; test/conformance/ installs both, apart from the product.

const runnerDir = fromRoot('test', 'conformance');
const node22 = join(runnerDir, 'node_modules', '.bin', 'node');
const suiteEntry = join(
  runnerDir,
  'node_modules',
  '@modelcontextprotocol',
  'conformance',
  'dist',
  'index.js',
);

type Results = Record<string, { passed: number; failed: number }>;

function run(
  command: string,
  args: string[],
  options: { cwd?: string; timeout: number },
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        output: stdout + stderr,
      });
    });
  });
}

/** Runs every active server scenario against `url`; returns per-scenario counts. */
async function conformance(url: string): Promise<{ code: number; results: Results; output: string }> {
  const out = mkdtempSync(join(tmpdir(), 'conformance-'));
  try {
    const { code, output } = await run(node22, [suiteEntry, 'server', '--url', url, '-o', out], {
      timeout: 180_000,
    });
    const results: Results = {};
    for (const match of output.matchAll(/^[✓✗] (\S+): (\d+) passed, (\d+) failed/gm)) {
      results[match[1]!] = { passed: Number(match[2]), failed: Number(match[3]) };
    }
    return { code, results, output };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const test = suite<{ direct: HttpFixture; proxy: RunningProxy }>('conformance', {} as never);

/** The run straight against the fixture, made by whichever test needs it first; none relies on another. */
let baseline: ReturnType<typeof conformance> | undefined;
const baselineRun = (url: string) => (baseline ??= conformance(url));

test.before(async (ctx) => {
  if (!existsSync(suiteEntry) || !existsSync(node22)) {
    const install = await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: runnerDir, timeout: 300_000 });
    assert.is(install.code, 0, `installing the conformance runner failed:\n${install.output}`);
  }
  const fixture = fixtureCommand('conformance');
  ctx.direct = await startHttpFixture();
  ctx.proxy = await startProxy(`
servers:
  shared: { command: ${JSON.stringify(fixture.command)}, args: ${JSON.stringify([...fixture.args, 'stdio'])} }
  session:
    command: ${JSON.stringify(fixture.command)}
    args: ${JSON.stringify([...fixture.args, 'stdio'])}
    isolation: session
  remote: { url: ${JSON.stringify(ctx.direct.url)} }
`);
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
  await ctx.direct?.stop();
});

test('the suite passes directly against the fixture (the baseline)', async (ctx) => {
  const { code, results, output } = await baselineRun(ctx.direct.url);
  assert.is(code, 0, output);
  assert.ok(
    Object.keys(results).length >= 30,
    `only ${Object.keys(results).length} scenarios ran:\n${output}`,
  );
});

/**
 * What the suite should count through the proxy. A stdio server's quick answers come as one JSON message
 * (decision 0027), where the fixture answers on SSE streams: the suite's check that concurrent POST SSE
 * streams work then has no stream to try, and reports "SSE streaming is optional" (INFO) instead of a pass.
 * A remote server's answers are relayed as the fixture sent them.
 */
function expectedThroughProxy(server: string, baseline: Results): Results {
  if (server === 'remote') return baseline;
  const streams = baseline['server-sse-multiple-streams']!;
  return { ...baseline, 'server-sse-multiple-streams': { ...streams, passed: streams.passed - 1 } };
}

for (const server of ['shared', 'session', 'remote']) {
  test(`the suite passes through the proxy as directly: ${server}`, async (ctx) => {
    const { results: baseline } = await baselineRun(ctx.direct.url);
    const { code, results, output } = await conformance(`${ctx.proxy.url}/servers/${server}/mcp`);
    assert.equal(results, expectedThroughProxy(server, baseline), output);
    assert.is(code, 0, output);
  });
}

test.run();
