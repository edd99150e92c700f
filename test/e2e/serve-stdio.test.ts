import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  isAlive,
  startProxy,
  waitFor,
  type RunningProxy,
  postInitialize,
} from '../support/proxy.js';

const echo = fixtureCommand('echo');
const conformance = fixtureCommand('conformance');
const list = (xs: string[]) => JSON.stringify(xs);

const manifest = `
limits: { keepAliveTimeout: 600h }
servers:
  echo:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    env: { GREETING: hello }
    timeout: 600h # longer than a Node timer can wait: counts as about 24.8 days
  conf:
    command: ${JSON.stringify(conformance.command)}
    args: ${list([...conformance.args, 'stdio'])}
  per-session:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    isolation: session
    maxSessions: 2
    prewarm: 1
    timeout: 600h
  lazy:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    startup: lazy
  off:
    command: ${JSON.stringify(echo.command)}
    args: ${list(echo.args)}
    disabled: true
`;

interface Listing {
  name: string;
  state: string;
  pids: number[];
  sessions: number;
  restarts: number;
  stderr: string[];
  kind: string;
  isolation?: string;
  disabled: boolean;
}

const test = suite<{ proxy: RunningProxy }>('serve stdio', {} as { proxy: RunningProxy });
const clients: Client[] = [];

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest, { env: { PROXY_SECRET: 'must-not-leak' } });
});

test.after(async (ctx) => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await ctx.proxy?.stop();
});

const servers = async (proxy: RunningProxy): Promise<Listing[]> =>
  (
    (await (await fetch(`${proxy.url}/servers`, { signal: AbortSignal.timeout(10_000) })).json()) as {
      servers: Listing[];
    }
  ).servers;

const open = async (proxy: RunningProxy, name: string, setup?: Parameters<typeof connect>[2], caps = {}) => {
  const c = await connect(proxy.url, name, setup, caps);
  clients.push(c.client);
  return c;
};

const text = (result: unknown) => (result as { content: { text: string }[] }).content[0]!.text;

test('tools are listed and called through a shared child', async ({ proxy }) => {
  const { client } = await open(proxy, 'echo');
  const tools = await client.listTools();
  assert.ok(tools.tools.some((t) => t.name === 'echo'));
  assert.is(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'hi');
  assert.is(client.getServerVersion()?.name, 'echo-fixture', 'clients see the upstream serverInfo');
});

test('prompts and resources pass through', async ({ proxy }) => {
  const { client } = await open(proxy, 'conf');
  const prompts = await client.listPrompts();
  assert.ok(prompts.prompts.some((p) => p.name === 'test_simple_prompt'));
  const prompt = await client.getPrompt({ name: 'test_simple_prompt' });
  assert.ok(prompt.messages.length > 0);
  const resource = await client.readResource({ uri: 'test://static-text' });
  assert.ok('text' in resource.contents[0]!);
});

test('progress notifications arrive for their own request', async ({ proxy }) => {
  const { client } = await open(proxy, 'echo');
  const seen: number[] = [];
  const result = await client.callTool({ name: 'sleep', arguments: { ms: 200 } }, undefined, {
    onprogress: (p) => seen.push(p.progress),
  });
  assert.is(text(result), 'slept 200');
  assert.equal(seen, [1, 2, 3, 4]);
});

test('a cancelled call is cancelled in the upstream too', async ({ proxy }) => {
  const { client } = await open(proxy, 'echo');
  const before = JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} }))).cancelled;
  const abort = new AbortController();
  // Cancelled at its first progress (after 1 s of 4): the upstream is then running it, with 3 s to go.
  const call = client.callTool({ name: 'sleep', arguments: { ms: 4000 } }, undefined, {
    signal: abort.signal,
    onprogress: () => abort.abort('enough'),
  });
  await call.then(
    () => assert.unreachable('the call should have been cancelled'),
    () => {},
  );
  await waitFor(
    async () => JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} }))).cancelled > before,
    5000,
    'the upstream to see the cancellation',
  );
});

test('a server-to-client request is answered by the session whose call caused it', async ({ proxy }) => {
  const answerAs = (who: string) => (client: Client) =>
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: 'assistant' as const,
      content: { type: 'text' as const, text: `from ${who}` },
      model: who,
    }));
  const a = await open(proxy, 'conf', answerAs('a'), { sampling: {} });
  const b = await open(proxy, 'conf', answerAs('b'), { sampling: {} });
  const ra = await a.client.callTool({ name: 'test_sampling', arguments: { prompt: 'hi' } });
  const rb = await b.client.callTool({ name: 'test_sampling', arguments: { prompt: 'hi' } });
  assert.match(text(ra), 'from a');
  assert.match(text(rb), 'from b');
});

test('a 1 MiB argument round-trips', async ({ proxy }) => {
  const { client } = await open(proxy, 'echo');
  const big = 'x'.repeat(1024 * 1024);
  assert.is(text(await client.callTool({ name: 'echo', arguments: { text: big } })), big);
});

test('8 sessions on one shared child, 100 interleaved calls each, never cross', async ({ proxy }) => {
  const sessions = await Promise.all(Array.from({ length: 8 }, () => open(proxy, 'echo')));
  await Promise.all(
    sessions.map(async ({ client }, s) => {
      for (let i = 0; i < 100; i++) {
        const payload = `session-${s}-call-${i}`;
        const got = text(await client.callTool({ name: 'echo', arguments: { text: payload } }));
        if (got !== payload) assert.unreachable(`session ${s} got ${got} for ${payload}`);
      }
    }),
  );
  const echoServer = (await servers(proxy)).find((s) => s.name === 'echo')!;
  assert.is(echoServer.pids.length, 1, 'all of them on one child');
});

test('a killed child is restarted and the next call succeeds', async ({ proxy }) => {
  const { client } = await open(proxy, 'echo');
  const [pid] = (await servers(proxy)).find((s) => s.name === 'echo')!.pids;
  process.kill(pid!, 'SIGKILL');
  await waitFor(
    async () => {
      const s = (await servers(proxy)).find((x) => x.name === 'echo')!;
      return s.state === 'ready' && s.pids[0] !== pid && s.restarts >= 1;
    },
    10_000,
    'the child to be restarted',
  );
  assert.is(text(await client.callTool({ name: 'echo', arguments: { text: 'again' } })), 'again');
});

test('isolation: session gives each session its own child, stopped on DELETE', async ({ proxy }) => {
  const a = await open(proxy, 'per-session');
  const b = await open(proxy, 'per-session');
  const pidA = JSON.parse(text(await a.client.callTool({ name: 'whoami', arguments: {} }))).pid;
  const pidB = JSON.parse(text(await b.client.callTool({ name: 'whoami', arguments: {} }))).pid;
  assert.is.not(pidA, pidB);
  await a.transport.terminateSession();
  await waitFor(() => !isAlive(pidA), 5000, 'the session child to stop');
  assert.ok(isAlive(pidB), 'the other session keeps its child');
});

test('maxSessions reached answers 503 with Retry-After and a JSON-RPC error', async ({ proxy }) => {
  // Up to the limit of 2 from however many sessions other tests left open; those opened here are closed.
  const opened: Awaited<ReturnType<typeof open>>[] = [];
  try {
    const already = (await servers(proxy)).find((s) => s.name === 'per-session')!.sessions;
    for (let i = already; i < 2; i++) opened.push(await open(proxy, 'per-session'));
    const response = await postInitialize(`${proxy.url}/servers/per-session/mcp`);
    assert.is(response.status, 503);
    assert.ok(response.headers.get('retry-after'));
    const body = (await response.json()) as { error: { message: string } };
    assert.match(body.error.message, 'limit of 2 sessions');
  } finally {
    await Promise.all(opened.map(({ transport }) => transport.terminateSession().catch(() => {})));
  }
});

test('a timeout longer than a Node timer can wait lets calls run, shared and per session, with no warning', async ({
  proxy,
}) => {
  // Node fires a timer set past 2^31 - 1 ms after 1 ms: before durations were capped, every call to these
  // two servers (timeout: 600h) failed at once as timed out.
  const shared = await open(proxy, 'echo');
  assert.is(text(await shared.client.callTool({ name: 'sleep', arguments: { ms: 200 } })), 'slept 200');
  const own = await open(proxy, 'per-session');
  try {
    assert.is(text(await own.client.callTool({ name: 'sleep', arguments: { ms: 200 } })), 'slept 200');
  } finally {
    await own.transport.terminateSession().catch(() => {});
  }
  // The limit's keep-alive too: each answered request armed an idle connection's timer with it.
  assert.not.match(proxy.stderr(), 'TimeoutOverflowWarning');
});

test('a lazy server starts on first use', async ({ proxy }) => {
  // No other test may use `lazy` on the shared proxy (the SIGTERM test has a proxy of its own): once
  // started, it stays up, and this test could not see it start.
  const before = (await servers(proxy)).find((s) => s.name === 'lazy')!.pids;
  assert.equal(before, [], 'lazy was not started yet: no other test may use it');
  const { client } = await open(proxy, 'lazy');
  assert.is(text(await client.callTool({ name: 'echo', arguments: { text: 'up' } })), 'up');
  assert.is((await servers(proxy)).find((s) => s.name === 'lazy')!.pids.length, 1);
});

test('a child sees its own env and the base, never the rest of the proxy environment', async ({ proxy }) => {
  const { client } = await open(proxy, 'echo');
  const { env } = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
  assert.is(env.GREETING, 'hello');
  assert.ok(env.PATH);
  assert.is(env.PROXY_SECRET, undefined);
});

test('unknown and disabled servers answer 404 naming them', async ({ proxy }) => {
  for (const name of ['nope', 'off']) {
    const response = await fetch(`${proxy.url}/servers/${name}/mcp`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(response.status, 404);
    assert.match(((await response.json()) as { error: { message: string } }).error.message, `"${name}"`);
  }
});

test('GET /servers shows each server with kind, state, pids, sessions, restarts and stderr', async ({
  proxy,
}) => {
  await open(proxy, 'echo'); // a session of its own to be counted
  const list = await servers(proxy);
  assert.equal(
    list.map((s) => s.name),
    ['echo', 'conf', 'per-session', 'lazy', 'off'],
  );
  const echoServer = list.find((s) => s.name === 'echo')!;
  assert.equal([echoServer.kind, echoServer.isolation, echoServer.state], ['stdio', 'shared', 'ready']);
  assert.ok(echoServer.sessions >= 1);
  assert.ok(echoServer.stderr.some((line) => line.startsWith('echo-fixture started')));
  assert.is(list.find((s) => s.name === 'off')!.disabled, true);
});

test('SIGTERM stops the proxy and leaves no child behind', async () => {
  // A proxy of its own, stopped here, so that this test need not run last.
  const proxy = await startProxy(manifest);
  const own: Client[] = [];
  try {
    // Children of each kind: shared (echo, conf), a session's and a prewarmed one (per-session), lazy.
    for (const name of ['per-session', 'lazy']) own.push((await connect(proxy.url, name)).client);
    const pids = (await servers(proxy)).flatMap((s) => s.pids);
    assert.ok(pids.length >= 4, `expected children, got ${pids}`);
    await Promise.all(own.splice(0).map((c) => c.close().catch(() => {})));
    const code = await proxy.stop();
    assert.is(code, 0);
    await waitFor(() => pids.every((pid) => !isAlive(pid)), 5000, 'every child to exit');
  } finally {
    await Promise.all(own.map((c) => c.close().catch(() => {})));
    await proxy.stop();
  }
});

test.run();
