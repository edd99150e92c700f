import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  isAlive,
  listingOf,
  postToSession,
  startProxy,
  waitFor,
  within,
  type RunningProxy,
} from '../support/proxy.js';

// `isolation: session` children: `prewarm` keeps that many spare ones running and refills once one is
// taken; a session's child that dies ends the session (its call in flight gets an error, then its id 404).

const echo = fixtureCommand('echo');
const manifest = `
servers:
  own:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
    isolation: session
    prewarm: 2
`;

const test = suite<{ proxy: RunningProxy }>('session children', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const listing = (proxy: RunningProxy) => listingOf(proxy.url, 'own');

const pidCount = async (proxy: RunningProxy, n: number) => (await listing(proxy)).pids.length === n;

test('prewarm keeps 2 spare children, a session takes one of them and the pool refills; a dead child ends its session', async ({
  proxy,
}) => {
  await waitFor(() => pidCount(proxy, 2), 10_000, 'two spare children');
  const spares = (await listing(proxy)).pids;
  const { client, transport } = await connect(proxy.url, 'own');
  try {
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    const { pid } = JSON.parse((whoami.content as { text: string }[])[0]!.text) as { pid: number };
    assert.ok(spares.includes(pid), 'the session was served by a spare child, not a new one');
    await waitFor(() => pidCount(proxy, 3), 10_000, 'the pool to refill to two spares beside the session');
    assert.ok((await listing(proxy)).pids.includes(pid));

    // The first progress notification (after a quarter of the sleep) says the child is in the call.
    let inCall!: () => void;
    const started = new Promise<void>((resolve) => (inCall = resolve));
    const outcome = client
      .callTool({ name: 'sleep', arguments: { ms: 4_000 } }, undefined, {
        onprogress: () => inCall(),
        timeout: 15_000,
      })
      .then(
        () => 'answered',
        (error: Error) => error.message,
      );
    await within(started, 'the child to be in the call');
    process.kill(pid, 'SIGKILL');
    const message = await within(outcome, 'the call in flight to end', 10_000);
    assert.is.not(message, 'answered');
    assert.match(message, /server process/);

    const session = transport.sessionId!;
    const after = await postToSession(
      { endpoint: `${proxy.url}/servers/own/mcp`, session },
      JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
    );
    assert.is(after.status, 404);
    await after.body?.cancel();
    assert.is((await listing(proxy)).sessions, 0);
    await waitFor(() => pidCount(proxy, 2), 5_000, 'only the two spares left');
    assert.ok(!isAlive(pid));
  } finally {
    await client.close();
  }
});

test.run();
