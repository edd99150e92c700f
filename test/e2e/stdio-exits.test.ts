import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  isAlive,
  postInitialize,
  startProxy,
  waitFor,
  type RunningProxy,
} from '../support/proxy.js';

// What the proxy tells clients and /servers when a stdio child exits: clients learn the server's state and
// where to look, never its stderr or the PATH; /servers keeps the details, shows only live pids, and does
// not count a stop the proxy made itself as an error.

const echo = fixtureCommand('echo');
const list = (xs: string[]) => JSON.stringify(xs);
/** A directory on the proxy's PATH that only a leak of the PATH would show. */
const PATH_MARK = '/w5-path-marker-dir';
const SECRET = 'DBPASSWORD';

const manifest = `
servers:
  secret-crash:
    command: ${JSON.stringify(process.execPath)}
    args: ${list(['-e', `console.error('connect failed postgres://admin:${SECRET}@db/x'); process.exit(1)`])}
    restart: never
  missing:
    command: w5-no-such-command
  missing-per-session:
    command: w5-no-such-command
    isolation: session
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
  ctx.proxy = await startProxy(manifest, { env: { PATH: `${PATH_MARK}:${process.env.PATH}` } });
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const server = async (proxy: RunningProxy, name: string): Promise<Listing> =>
  (
    await fetch(`${proxy.url}/servers/${name}`, { signal: AbortSignal.timeout(5000) })
  ).json() as Promise<Listing>;

const initializeText = async (proxy: RunningProxy, name: string) => {
  const response = await postInitialize(`${proxy.url}/servers/${name}/mcp`);
  return { status: response.status, text: await response.text() };
};

test("a crashed server's client is told its state and where to look, not its stderr", async ({ proxy }) => {
  await waitFor(async () => (await server(proxy, 'secret-crash')).state === 'stopped', 10_000, 'the crash');
  const { status, text } = await initializeText(proxy, 'secret-crash');
  assert.is(status, 503);
  assert.not.match(text, SECRET);
  assert.match(text, 'server secret-crash is stopped; see GET /servers/secret-crash');
  assert.match((await server(proxy, 'secret-crash')).lastError ?? '', SECRET, 'the details stay in /servers');
});

test('a missing command is not answered with the PATH, shared or per session', async ({ proxy }) => {
  await waitFor(async () => (await server(proxy, 'missing')).state === 'failed', 10_000, 'the failure');
  const shared = await initializeText(proxy, 'missing');
  assert.is(shared.status, 503);
  assert.not.match(shared.text, PATH_MARK);
  assert.match(shared.text, 'server missing is failed; see GET /servers/missing');
  const perSession = await initializeText(proxy, 'missing-per-session');
  assert.not.match(perSession.text, PATH_MARK);
  assert.match(perSession.text, 'could not be started; see GET /servers/missing-per-session');
  for (const name of ['missing', 'missing-per-session'])
    assert.match((await server(proxy, name)).lastError ?? '', PATH_MARK, 'the details stay in /servers');
});

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
