import { connect as tcpConnect, type Socket } from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  connect,
  fixtureCommand,
  startProxy,
  waitFor,
  type RunningProxy,
  postToSession,
} from '../support/proxy.js';

// Hostile and broken input against a running proxy: every answer is a clear 4xx, nothing crashes, and the
// proxy keeps serving. (How much memory a flood costs is the benchmark's to measure.)

const echo = fixtureCommand('echo');
const test = suite<{ proxy: RunningProxy; client: Client; endpoint: string; session: string; port: number }>(
  'hostile input',
  {} as never,
);
const ACCEPT = 'application/json, text/event-stream';

test.before(async (ctx) => {
  ctx.proxy = await startProxy(`
limits: { headersTimeout: 1s, requestTimeout: 2s, maxBodyBytes: 1048576 }
servers:
  echo: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }
`);
  ctx.endpoint = `${ctx.proxy.url}/servers/echo/mcp`;
  ctx.port = Number(new URL(ctx.proxy.url).port);
  // Kept open: its session is the one the tests below abuse.
  const { transport, client } = await connect(ctx.proxy.url, 'echo');
  ctx.client = client;
  ctx.session = transport.sessionId!;
});

test.after(async (ctx) => {
  try {
    await ctx.client?.close();
  } finally {
    await ctx.proxy?.stop();
  }
});

const signal = () => AbortSignal.timeout(10_000);

/**
 * A raw HTTP exchange: what an HTTP client library would refuse to send. Says who closed the connection:
 * the proxy, or this end once `waitMs` passed.
 */
function raw(
  port: number,
  request: string,
  waitMs = 3000,
): Promise<{ answer: string; closedBy: 'proxy' | 'client' }> {
  return new Promise((resolve) => {
    const socket: Socket = tcpConnect(port, '127.0.0.1');
    let answer = '';
    let closedBy: 'proxy' | 'client' = 'proxy';
    const timer = setTimeout(() => {
      closedBy = 'client';
      socket.destroy();
    }, waitMs);
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedBy });
    });
    socket.on('error', () => {});
    socket.write(request);
  });
}

const status = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

/** Whether fetch can send `value` as a header at all: Headers refuses some, synchronously. */
function fetchCanSend(value: string): boolean {
  try {
    new Headers({ 'mcp-session-id': value });
    return true;
  } catch {
    return false;
  }
}

test('malformed bodies are 400 with a JSON-RPC parse error', async (ctx) => {
  for (const body of [
    '',
    '{',
    '{"jsonrpc":',
    'null garbage',
    '\u0000\u0001\u0002',
    '[1,2,',
    '"just a string',
  ]) {
    const r = await postToSession(ctx, body);
    assert.is(r.status, 400, `body ${JSON.stringify(body)}`);
    assert.is(((await r.json()) as { error: { code: number } }).error.code, -32700);
  }
});

test('JSON-RPC with wrong types is 400', async (ctx) => {
  const bodies = [
    { jsonrpc: '2.0', id: 1, method: 7 },
    { jsonrpc: '2.0', id: { nested: true }, method: 'ping' },
    { jsonrpc: '1.0', id: 1, method: 'ping' },
    { jsonrpc: '2.0', id: 1, method: 'ping', params: 'not an object' },
    { id: 1, method: 'ping' },
    42,
    [],
  ];
  for (const body of bodies) {
    const r = await postToSession(ctx, JSON.stringify(body));
    assert.ok(r.status === 400, `${JSON.stringify(body)} answered ${r.status}`);
    await r.text();
  }
});

test('oversized bodies are 413, declared or streamed', async (ctx) => {
  const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(2 << 20) } });
  const declared = await postToSession(ctx, big);
  assert.is(declared.status, 413);
  // No Content-Length: the body is counted as it streams in.
  const streamed = await fetch(ctx.endpoint, {
    method: 'POST',
    signal: signal(),
    headers: {
      'content-type': 'application/json',
      accept: ACCEPT,
      'mcp-session-id': ctx.session,
      'mcp-protocol-version': '2025-11-25',
    },
    body: new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1 << 20)));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  assert.is(streamed.status, 413);
});

test('a batch flood is refused, not processed', async (ctx) => {
  const flood = Array.from({ length: 5000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' }));
  const r = await postToSession(ctx, JSON.stringify(flood));
  assert.is(r.status, 400);
  await r.text();
});

test('session ids of odd length and charset are 404 or refused, never a crash', async (ctx) => {
  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  for (const id of ['', 'x'.repeat(4000), '../../etc/passwd', 'sess\tion', '%00', '😀'.repeat(10)]) {
    let code: number;
    if (fetchCanSend(id)) {
      const r = await postToSession({ ...ctx, session: id }, ping);
      code = r.status;
      await r.text();
    } else {
      // What fetch will not send goes raw: a connection reset or a crash answers nothing, status 0.
      const { answer } = await raw(
        ctx.port,
        `POST /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: ${ACCEPT}\r\nMcp-Session-Id: ${id}\r\nMcp-Protocol-Version: 2025-11-25\r\nContent-Length: ${Buffer.byteLength(ping)}\r\nConnection: close\r\n\r\n${ping}`,
      );
      code = status(answer);
    }
    assert.ok(code >= 400 && code < 500, `session ${JSON.stringify(id).slice(0, 20)} answered ${code}`);
  }
  const { answer: huge } = await raw(
    ctx.port,
    `POST /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\nMcp-Session-Id: ${'a'.repeat(20000)}\r\n\r\n`,
  );
  assert.is(status(huge), 431);
  // Two ids, which Node joins into one "a, b": refused as two, not looked up as one.
  const { answer: twice } = await raw(
    ctx.port,
    `DELETE /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\nMcp-Session-Id: ${ctx.session}\r\nMcp-Session-Id: ${ctx.session}\r\nConnection: close\r\n\r\n`,
  );
  assert.is(status(twice), 400);
  assert.match(twice, 'one Mcp-Session-Id only');
});

test('encoded path traversal in the server name is just an unknown server', async (ctx) => {
  for (const name of ['..%2F..%2Fetc', '%2e%2e', '..%5C..%5Cwindows', 'echo%00', 'ECHO', '%252e%252e']) {
    const r = await fetch(`${ctx.proxy.url}/servers/${name}/mcp`, {
      method: 'POST',
      body: '{}',
      signal: signal(),
    });
    assert.is(r.status, 404, name);
    await r.text();
  }
  const { answer: dotdot } = await raw(
    ctx.port,
    'GET /servers/../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n',
  );
  assert.ok(status(dotdot) === 404, dotdot.slice(0, 40));
});

test('header injection through the URL or headers goes nowhere', async (ctx) => {
  const r = await fetch(`${ctx.proxy.url}/servers/x%0d%0aSet-Cookie:%20a=b/mcp`, {
    method: 'POST',
    body: '{}',
    signal: signal(),
  });
  assert.is(r.status, 404);
  assert.is(r.headers.get('set-cookie'), null);
  const { answer: crlf } = await raw(
    ctx.port,
    'POST /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: a\rSet-Cookie: b\r\n\r\n',
  );
  assert.is(status(crlf), 400);
  const id = await fetch(ctx.endpoint, {
    method: 'POST',
    headers: { 'x-request-id': 'evil"value with spaces' },
    body: '{}',
    signal: signal(),
  });
  assert.not.match(id.headers.get('x-request-id') ?? '', 'evil');
  await id.text();
});

test('a slow client is cut off by the header and request timeouts', async (ctx) => {
  // Never finishes its headers. The proxy cuts it off (after its 1 s headersTimeout, checked each second),
  // long before this end would give up: Node's own limits would hold it for a minute.
  const { answer, closedBy } = await raw(
    ctx.port,
    'POST /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\n',
    8000,
  );
  assert.is(closedBy, 'proxy', 'held for the 8 s this end waits');
  assert.ok(answer === '' || status(answer) === 408, answer.slice(0, 40));
});

test('a body that never arrives whole is cut off at the request timeout, and the cut is logged', async (ctx) => {
  // The proxy cuts it off (its 2 s requestTimeout, checked each second), long before this end would give up.
  const { closedBy } = await raw(
    ctx.port,
    `POST /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: ${ACCEPT}\r\nMcp-Session-Id: ${ctx.session}\r\nContent-Length: 100\r\n\r\n{"jsonrpc"`,
    8000,
  );
  assert.is(closedBy, 'proxy', 'held for the 8 s this end waits');
  // As Koa reported its routes' connection errors; a client that merely left is not worth a line.
  const logged = () => ctx.proxy.stderr().includes('"event":"http-error","error":"Request timeout"');
  await waitFor(logged, 5000, `the cut to be logged:\n${ctx.proxy.stderr().slice(-2000)}`);
});

test('a flood of bad requests is refused one by one, opens no session, and the proxy keeps serving', async (ctx) => {
  const sessions = async () => {
    const text = await (await fetch(`${ctx.proxy.url}/metrics`, { signal: signal() })).text();
    return Number(/^mcp_proxy_sessions\{server="echo"\} (\d+)/m.exec(text)?.[1]);
  };
  const before = await sessions();
  const bad: [number, () => Promise<Response>][] = [
    [400, () => postToSession(ctx, '{broken')],
    [404, () => postToSession({ ...ctx, session: 'nope' }, '{"jsonrpc":"2.0","id":1,"method":"ping"}')],
    [
      404,
      () =>
        fetch(`${ctx.proxy.url}/servers/${Math.random()}/mcp`, {
          method: 'POST',
          body: '{}',
          signal: signal(),
        }),
    ],
    [
      413,
      () =>
        postToSession(
          ctx,
          JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'y'.repeat(2 << 20) } }),
        ),
    ],
  ];
  for (let round = 0; round < 25; round++) {
    const codes = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const r = await bad[i % bad.length]![1]();
        await r.text();
        return r.status;
      }),
    );
    assert.equal(
      codes,
      Array.from({ length: 20 }, (_, i) => bad[i % bad.length]![0]),
      `round ${round}`,
    );
  }
  assert.is(await sessions(), before, 'the flood opened no session');
  const { client } = await connect(ctx.proxy.url, 'echo');
  try {
    const result = (await client.callTool({ name: 'echo', arguments: { text: 'alive' } })) as {
      content: { text: string }[];
    };
    assert.is(result.content[0]!.text, 'alive');
  } finally {
    await client.close();
  }
  assert.is(ctx.proxy.process.exitCode, null, 'the proxy is still running');
});

test.run();
