import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  fixtureCommand,
  isAlive,
  listingOf,
  postInitialize,
  postToSession,
  startProxy,
  waitFor,
  within,
  type RunningProxy,
} from '../support/proxy.js';

// Shutdown on SIGTERM or SIGINT: calls in flight get the grace period (limits.shutdownGrace) and are
// then ended, and the proxy exits 0; a second signal during shutdown exits 1 at once, its children gone.

const echo = fixtureCommand('echo');
const manifest = `
servers:
  echo:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
`;

const test = suite('shutdown');

/** Resolves with the proxy's exit code, or null for a signal. */
const exited = (proxy: RunningProxy) =>
  new Promise<number | null>((resolve) => {
    if (proxy.process.exitCode !== null || proxy.process.signalCode !== null) resolve(proxy.process.exitCode);
    else proxy.process.once('exit', (code) => resolve(code));
  });

async function childPid(proxy: RunningProxy): Promise<number> {
  return (await listingOf(proxy.url, 'echo')).pids[0]!;
}

/**
 * Opens a session and starts a 30 s call on it; resolves once the proxy answered its headers (the call is
 * being answered: shutdown waits for it), with the call's response.
 */
async function callInFlight(proxy: RunningProxy, signal: AbortSignal): Promise<Response> {
  const endpoint = `${proxy.url}/servers/echo/mcp`;
  const opened = await postInitialize(endpoint);
  await opened.text();
  const session = opened.headers.get('mcp-session-id')!;
  const call = JSON.stringify({
    jsonrpc: '2.0',
    id: 2,
    method: 'tools/call',
    params: { name: 'sleep', arguments: { ms: 30_000 } },
  });
  const response = await postToSession({ endpoint, session }, call, {}, signal);
  assert.is(response.status, 200);
  return response;
}

test('SIGTERM lets a call in flight run for limits.shutdownGrace, then ends it and exits 0', async () => {
  // The default is 10 s (manifest-load.test.ts); 2 s keeps the test short.
  const proxy = await startProxy(`limits: { shutdownGrace: 2s }\n${manifest}`);
  try {
    const response = await callInFlight(proxy, AbortSignal.timeout(25_000));
    const exit = exited(proxy);
    const signalled = Date.now();
    proxy.process.kill('SIGTERM');
    // The answer ends with the shutdown: an error for the call, never its result.
    const answer = await within(response.text(), 'the call to be ended', 10_000);
    assert.not.match(answer, /slept/);
    assert.is(await within(exit, 'the proxy to exit', 10_000), 0);
    const took = Date.now() - signalled;
    assert.ok(took >= 1_900, `waited the grace period for the call (exited after ${took} ms)`);
  } finally {
    await proxy.stop();
  }
});

test('a second signal during shutdown exits 1 at once, logs forced-exit and leaves no child running', async () => {
  const proxy = await startProxy(manifest);
  try {
    const pid = await childPid(proxy);
    const response = await callInFlight(proxy, AbortSignal.timeout(15_000));
    const exit = exited(proxy);
    proxy.process.kill('SIGTERM');
    await waitFor(() => proxy.stderr().includes('"event":"shutting-down"'), 5_000, 'shutdown to begin');
    // SIGINT as the second: it counts as a signal like SIGTERM.
    proxy.process.kill('SIGINT');
    assert.is(await within(exit, 'the forced exit', 3_000), 1);
    assert.match(proxy.stderr(), /"event":"forced-exit","signal":"SIGINT"/);
    await response.body?.cancel().catch(() => {});
    await waitFor(() => !isAlive(pid), 5_000, 'the child to be gone');
  } finally {
    await proxy.stop();
  }
});

test('SIGINT shuts down as SIGTERM does: exits 0 and stops the child', async () => {
  const proxy = await startProxy(manifest);
  try {
    const pid = await childPid(proxy);
    const exit = exited(proxy);
    proxy.process.kill('SIGINT');
    assert.is(await within(exit, 'the proxy to exit', 10_000), 0);
    assert.match(proxy.stderr(), /"event":"shutting-down","signal":"SIGINT"/);
    await waitFor(() => !isAlive(pid), 5_000, 'the child to be gone');
  } finally {
    await proxy.stop();
  }
});

test.run();
