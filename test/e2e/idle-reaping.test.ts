import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  isAlive,
  listingOf,
  postInitialize,
  postToSession,
  startProxy,
  waitFor,
  type RunningProxy,
} from '../support/proxy.js';

// Idle reaping of stdio sessions (idleTimeout): a session that gets no request for that long is closed
// (its id answered 404, no longer counted in /servers, and with `isolation: session` its process
// stopped), while a session that keeps sending requests lives on.

const echo = fixtureCommand('echo');
const list = (xs: string[]) => JSON.stringify(xs);
const manifest = `
servers:
  shared:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    idleTimeout: 2s
  own:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    isolation: session
    idleTimeout: 2s
`;

const test = suite<{ proxy: RunningProxy }>('idle reaping', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const listing = (proxy: RunningProxy, name: string) => listingOf(proxy.url, name);

/** Opens a session with a raw initialize and sends nothing more on it; its id. */
async function openIdle(endpoint: string): Promise<string> {
  const response = await postInitialize(endpoint);
  assert.is(response.status, 200);
  await response.text();
  return response.headers.get('mcp-session-id')!;
}

const ping = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' });

test('a shared server closes a session with no request past idleTimeout: 404 after, count back at 0', async ({
  proxy,
}) => {
  const endpoint = `${proxy.url}/servers/shared/mcp`;
  const session = await openIdle(endpoint);
  assert.is((await listing(proxy, 'shared')).sessions, 1);
  // Polled on /servers, never on the session itself: a request on it would keep it alive.
  await waitFor(
    async () => (await listing(proxy, 'shared')).sessions === 0,
    8_000,
    'the idle session to be reaped',
  );
  const after = await postToSession({ endpoint, session }, ping);
  assert.is(after.status, 404);
  await after.body?.cancel();
  assert.match(proxy.stderr(), /"event":"session-idle-closed","server":"shared"/);
});

test('isolation session: the idle session is closed and its process stopped; a busy session lives on', async ({
  proxy,
}) => {
  const endpoint = `${proxy.url}/servers/own/mcp`;
  const idle = await openIdle(endpoint);
  const [idlePid] = (await listing(proxy, 'own')).pids;
  assert.ok(idlePid !== undefined && isAlive(idlePid));
  const busy = await connect(proxy.url, 'own');
  const busyOpened = Date.now();
  try {
    const before = await listing(proxy, 'own');
    assert.is(before.sessions, 2);
    const busyPid = before.pids.find((pid) => pid !== idlePid)!;
    // The busy session calls every 50 ms or so until the idle one is gone and it has itself lived past
    // idleTimeout (2 s) and a reaping round (1 s): only its requests kept it.
    await waitFor(
      async () => {
        await busy.client.callTool({ name: 'echo', arguments: { text: 'still here' } });
        return (await listing(proxy, 'own')).sessions === 1 && Date.now() - busyOpened > 3_500;
      },
      8_000,
      'the idle session to be reaped',
    );
    const after = await postToSession({ endpoint, session: idle }, ping);
    assert.is(after.status, 404);
    await after.body?.cancel();
    await waitFor(() => !isAlive(idlePid), 5_000, 'the idle session’s process to stop');
    const answer = await busy.client.callTool({ name: 'echo', arguments: { text: 'alive' } });
    assert.equal(answer.content, [{ type: 'text', text: 'alive' }]);
    assert.ok(isAlive(busyPid));
    assert.equal((await listing(proxy, 'own')).pids, [busyPid]);
  } finally {
    await busy.transport.terminateSession().catch(() => {});
    await busy.client.close();
  }
});

test.run();
