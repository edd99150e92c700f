import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { fixtureCommand, muteServer, startProxy, waitFor, within } from '../support/proxy.js';
import { test } from '../support/uvu.js';

// The fleet's log events name their server in the field every other event uses: `server`.

const echo = fixtureCommand('echo');
const echoServer = (name: string) =>
  `  ${name}: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }\n`;
const missing = (name: string) => `  ${name}: { command: /nonexistent/mcp-server }\n`;

const events = (stderr: string, event: string): Record<string, unknown>[] =>
  stderr
    .split('\n')
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('server-start-failed and server-changed name their server, at boot and on reload', async () => {
  const proxy = await startProxy(`servers:\n${echoServer('steady')}${missing('broken')}`);
  try {
    const [atBoot] = events(proxy.stderr(), 'server-start-failed');
    assert.is(atBoot?.server, 'broken', proxy.stderr());
    assert.match(String(atBoot?.reason), '/nonexistent/mcp-server');

    writeFileSync(
      proxy.manifestPath,
      `servers:\n${echoServer('steady')}${missing('broken')}${missing('added')}`,
    );
    const changed = () =>
      events(proxy.stderr(), 'server-changed').map(({ server, action }) => ({ server, action }));
    await waitFor(() => changed().length > 3, 10_000, 'the reload');
    assert.equal(changed(), [
      { server: 'steady', action: 'add' },
      { server: 'broken', action: 'add' },
      // Any reload tries a failed server again (decision 0034).
      { server: 'broken', action: 'restart' },
      { server: 'added', action: 'add' },
    ]);
    assert.ok(events(proxy.stderr(), 'server-start-failed').some(({ server }) => server === 'added'));
  } finally {
    await proxy.stop();
  }
});

test("a served manifest's warnings at boot are manifest-warning events, as on reload, not plain lines", async () => {
  const roles = `servers:\n  guarded:\n    command: ${JSON.stringify(echo.command)}\n    args: ${JSON.stringify(echo.args)}\n    requiredRoles: [reader]\n`;
  const proxy = await startProxy(roles);
  try {
    const lines = proxy
      .stderr()
      .split('\n')
      .filter((line) => line.includes('requiredRoles'));
    assert.ok(lines.length > 0, proxy.stderr());
    for (const line of lines)
      assert.is((JSON.parse(line) as { event: string }).event, 'manifest-warning', line);
  } finally {
    await proxy.stop();
  }
});

test('a reload that shutdown overtook is not reported as applied', async () => {
  const proxy = await startProxy(`servers:\n${echoServer('steady')}`);
  const exited = once(proxy.process, 'exit');
  const pidFile = join(proxy.dir, 'mute.pid');
  const mute = muteServer('mute', pidFile);
  try {
    writeFileSync(proxy.manifestPath, `servers:\n${echoServer('steady')}${mute}`);
    await waitFor(() => existsSync(pidFile), 10_000, 'the reload to start the mute server');
    proxy.process.kill('SIGTERM');
    await within(exited, 'the proxy to exit');
    const after = proxy.stderr().slice(proxy.stderr().indexOf('"shutting-down"'));
    assert.is(events(after, 'reload').length, 0, after);
  } finally {
    await proxy.stop();
  }
});

test.run();
