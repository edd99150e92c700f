import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  isAlive,
  startProxy,
  waitFor,
  type RunningProxy,
} from '../support/proxy.js';

// What /servers says of a stdio child that exited: it shows only live pids, and does not count a stop the
// proxy made itself as an error.

const echo = fixtureCommand('echo');
const list = (xs: string[]) => JSON.stringify(xs);

const manifest = `
servers:
  crash-loop:
    command: ${JSON.stringify(process.execPath)}
    args: ${list(['-e', 'process.exit(1)'])}
  per-session:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    isolation: session
`;

interface Listing {
  name: string;
  state: string;
  pids: number[];
  restarts: number;
  lastError?: string;
}

const test = suite<{ proxy: RunningProxy }>('stdio exits', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const server = async (proxy: RunningProxy, name: string): Promise<Listing> =>
  (
    await fetch(`${proxy.url}/servers/${name}`, { signal: AbortSignal.timeout(5000) })
  ).json() as Promise<Listing>;

test('/servers never shows the pid of a child that has exited, also while restarting', async ({ proxy }) => {
  // Every pid ever listed; one found dead before a listing was asked for must not be in it.
  const seen = new Set<number>();
  let checkedDead = 0;
  await waitFor(
    async () => {
      const dead = [...seen].filter((pid) => !isAlive(pid));
      const listing = await server(proxy, 'crash-loop');
      const shown = listing.pids.filter((pid) => dead.includes(pid));
      assert.equal(shown, [], `${listing.state} listed exited pids ${shown}`);
      for (const pid of listing.pids) seen.add(pid);
      if (dead.length > 0) checkedDead++;
      return listing.restarts >= 3 && checkedDead >= 5;
    },
    20_000,
    'several restarts of the crash loop',
  );
});

test("a session's child the proxy stopped itself (DELETE) is no error in /servers", async ({ proxy }) => {
  const { client, transport } = await connect(proxy.url, 'per-session');
  try {
    const [pid] = (await server(proxy, 'per-session')).pids;
    await transport.terminateSession();
    await waitFor(() => !isAlive(pid!), 5000, 'the session child to stop');
    assert.is((await server(proxy, 'per-session')).lastError, undefined);
  } finally {
    await client.close();
  }
  // A child that dies on its own still is.
  const other = await connect(proxy.url, 'per-session');
  try {
    const [pid] = (await server(proxy, 'per-session')).pids;
    process.kill(pid!, 'SIGKILL');
    await waitFor(
      async () => (await server(proxy, 'per-session')).lastError !== undefined,
      5000,
      'the crash to be recorded',
    );
    assert.is((await server(proxy, 'per-session')).lastError, "a session's process was killed by SIGKILL");
  } finally {
    await other.client.close();
  }
});

test.run();
