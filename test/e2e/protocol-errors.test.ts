import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  startProxy,
  type RunningProxy,
  postToSession,
  postInitialize,
} from '../support/proxy.js';

// Bad input answered as the Streamable HTTP transport specifies, through a real proxy and child.

const echo = fixtureCommand('echo');
const manifest = `
servers:
  echo: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }
`;

const test = suite<{ proxy: RunningProxy; endpoint: string; session: string }>(
  'protocol errors',
  {} as never,
);

const ACCEPT = 'application/json, text/event-stream';

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
  ctx.endpoint = `${ctx.proxy.url}/servers/echo/mcp`;
  const response = await postInitialize(ctx.endpoint);
  assert.is(response.status, 200);
  ctx.session = response.headers.get('mcp-session-id')!;
  await response.text();
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { code: number } }).error.code;

test('malformed JSON is 400 with -32700', async (ctx) => {
  const r = await postToSession(ctx, '{"jsonrpc": "2.0", "id": 1, "method": ');
  assert.is(r.status, 400);
  assert.is(await errorOf(r), -32700);
});

test('a JSON value that is not JSON-RPC is 400', async (ctx) => {
  const r = await postToSession(ctx, JSON.stringify({ hello: 'world' }));
  assert.is(r.status, 400);
});

test('a wrong Accept header is 406', async (ctx) => {
  const r = await postToSession(ctx, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), {
    accept: 'text/html',
  });
  assert.is(r.status, 406);
});

test('a wrong content type is 415', async (ctx) => {
  const r = await postToSession(ctx, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), {
    'content-type': 'text/plain',
  });
  assert.is(r.status, 415);
});

test('an unknown session is 404', async (ctx) => {
  const r = await postToSession(
    { ...ctx, session: 'not-a-session' },
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  );
  assert.is(r.status, 404);
});

test('a request without a session header is 400', async (ctx) => {
  const r = await fetch(ctx.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(r.status, 400);
  const get = await fetch(ctx.endpoint, {
    headers: { accept: 'text/event-stream' },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(get.status, 400);
});

test('an unsupported protocol version is 400', async (ctx) => {
  const r = await postToSession(ctx, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), {
    'mcp-protocol-version': '1999-01-01',
  });
  assert.is(r.status, 400);
});

test('a body over the limit is 413', async (ctx) => {
  const r = await postToSession(
    ctx,
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping', params: { x: 'y'.repeat(5 << 20) } }),
  );
  assert.is(r.status, 413);
});

test('an unsupported method is 405', async (ctx) => {
  const r = await fetch(ctx.endpoint, { method: 'PUT', body: '{}', signal: AbortSignal.timeout(10_000) });
  assert.is(r.status, 405);
});

test('a batch of requests is answered, each under its own id', async (ctx) => {
  const r = await postToSession(
    ctx,
    JSON.stringify([
      { jsonrpc: '2.0', id: 'a', method: 'ping' },
      { jsonrpc: '2.0', id: 'b', method: 'tools/list' },
    ]),
  );
  // 2025-11-25 removed batching; the proxy still accepts a batch, as the SDK transport does, and answers
  // it on one SSE stream that ends after the last answer (wire.ts readMessages, client-session.ts post).
  assert.is(r.status, 200);
  assert.is(r.headers.get('content-type'), 'text/event-stream');
  const answers = (await r.text())
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as { id: string; result?: { tools?: unknown[] } });
  assert.equal(answers.map((a) => a.id).sort(), ['a', 'b']);
  assert.equal(answers.find((a) => a.id === 'a')?.result, {});
  assert.ok(answers.find((a) => a.id === 'b')?.result?.tools?.length, 'tools/list answered with tools');
});

test('a huge id comes back exactly as sent', async (ctx) => {
  const id = 'i'.repeat(10_000);
  const r = await postToSession(ctx, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }));
  assert.is(r.status, 200);
  assert.match(await r.text(), `"id":"${id}"`);
});

test('a client that disconnects mid-stream leaves the proxy serving', async (ctx) => {
  const abort = new AbortController();
  const call = {
    jsonrpc: '2.0',
    id: 10,
    method: 'tools/call',
    params: { name: 'sleep', arguments: { ms: 2000 } },
  };
  const headers = fetch(ctx.endpoint, {
    method: 'POST',
    signal: abort.signal,
    headers: {
      'content-type': 'application/json',
      accept: ACCEPT,
      'mcp-session-id': ctx.session,
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify(call),
  });
  // Mid-stream: once the headers are out (after 100 ms), while the 2 s call still runs.
  const pending = (await headers).text();
  abort.abort();
  await pending.then(
    () => assert.unreachable('the request was aborted'),
    () => {},
  );
  const { client } = await connect(ctx.proxy.url, 'echo');
  try {
    const result = (await client.callTool({ name: 'echo', arguments: { text: 'still here' } })) as {
      content: { text: string }[];
    };
    assert.is(result.content[0]!.text, 'still here');
  } finally {
    await client.close();
  }
});

test.run();
