import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { callOnce } from '../support/remote.js';

// What of a client's request reaches a remote server, through the real proxy: which methods, which
// session headers, which headers claiming who the client is. The upstream is a node:http server on
// 127.0.0.1 that records each request and answers initialize with a session of its own.

const BOUND_MS = 10_000;

interface Context {
  proxy: RunningProxy;
  upstream: Server;
  /** What the upstream received, in order. */
  seen: { method: string; headers: IncomingHttpHeaders }[];
}

const test = suite<Context>('remote headers', { seen: [] } as unknown as Context);

test.before(async (context) => {
  let sessions = 0;
  context.upstream = createServer((req, res) => {
    context.seen.push({ method: req.method!, headers: req.headers });
    req.resume();
    req.on('end', () => {
      const opened =
        req.headers['mcp-session-id'] === undefined ? { 'mcp-session-id': `up-${++sessions}` } : {};
      res.writeHead(200, { 'content-type': 'application/json', ...opened });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
  });
  await new Promise<void>((resolve) => context.upstream.listen(0, '127.0.0.1', resolve));
  const { port } = context.upstream.address() as AddressInfo;
  // One session at most, so that a request the caps took for one of a session but that opened another
  // upstream shows.
  context.proxy = await startProxy(`servers:
  remote:
    url: http://127.0.0.1:${port}/mcp
    maxSessions: 1
    headers: { X-Upstream-Key: upstream-secret }
`);
});

test.before.each((context) => {
  context.seen.length = 0;
});

test.after(async (context) => {
  await context.proxy?.stop();
  context.upstream.closeAllConnections();
  await new Promise((resolve) => context.upstream.close(resolve));
});

const proxyPort = (proxy: RunningProxy) => Number(new URL(proxy.url).port);

/** One request to the remote server's endpoint, with a well-behaved client's headers and these. */
const call = (
  proxy: RunningProxy,
  { method = 'POST', headers = {} }: { method?: string; headers?: Record<string, string | string[]> } = {},
) =>
  callOnce(proxyPort(proxy), {
    method,
    path: '/servers/remote/mcp',
    body: method === 'POST' ? '{"jsonrpc":"2.0","id":7,"method":"ping"}' : '',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    boundMs: BOUND_MS,
  });

test('a method the transport does not have is 405 with Allow, and never reaches the remote server', async ({
  proxy,
  seen,
}) => {
  for (const method of ['TRACE', 'PUT', 'PATCH', 'OPTIONS']) {
    const reply = await call(proxy, { method });
    assert.is(reply.status, 405, method);
    assert.is(reply.headers.allow, 'GET, POST, DELETE', method);
    assert.is(JSON.parse(reply.body).error.message, 'Method Not Allowed');
  }
  assert.equal(seen, [], 'the upstream was sent nothing, credentials least of all');
});

test('an empty or repeated Mcp-Session-Id is 400, and opens no session upstream', async ({ proxy, seen }) => {
  const empty = await call(proxy, { headers: { 'mcp-session-id': '' } });
  assert.is(empty.status, 400);
  assert.is(JSON.parse(empty.body).error.message, 'Bad Request: Mcp-Session-Id must not be empty');
  const repeated = await call(proxy, { headers: { 'mcp-session-id': ['a', 'b'] } });
  assert.is(repeated.status, 400);
  assert.is(JSON.parse(repeated.body).error.message, 'Bad Request: one Mcp-Session-Id only');
  assert.equal(seen, []);
});

test('a Connection header cannot keep Mcp-Session-Id or Mcp-Protocol-Version from the remote server', async ({
  proxy,
  seen,
}) => {
  const opened = await call(proxy);
  const session = opened.headers['mcp-session-id'] as string;
  assert.ok(session, 'the upstream opened a session');
  try {
    const reply = await call(proxy, {
      headers: {
        'mcp-session-id': session,
        'mcp-protocol-version': '2025-11-25',
        connection: 'keep-alive, Mcp-Session-Id, mcp-protocol-version, x-dropped',
        'x-dropped': 'hop-by-hop, as named',
      },
    });
    assert.is(reply.status, 200);
    const sent = seen[1]!.headers;
    assert.is(sent['mcp-session-id'], session);
    assert.is(sent['mcp-protocol-version'], '2025-11-25');
    assert.is(sent['x-dropped'], undefined, 'other fields it names are still hop-by-hop');
    assert.is(reply.headers['mcp-session-id'], undefined, 'no second session was opened');
  } finally {
    await call(proxy, { method: 'DELETE', headers: { 'mcp-session-id': session } });
  }
});

test('headers claiming who the client is stop at the proxy; other end-to-end headers and configured ones pass', async ({
  proxy,
  seen,
}) => {
  const claimed = {
    forwarded: 'for=10.0.0.1;proto=https',
    'x-forwarded-for': '10.0.0.1',
    'x-forwarded-host': 'internal.example',
    'x-forwarded-proto': 'https',
    'x-forwarded-user': 'admin',
    'x-forwarded-email': 'admin@example.com',
    'x-real-ip': '10.0.0.1',
    'true-client-ip': '10.0.0.1',
    'x-client-ip': '10.0.0.1',
    'x-ms-client-principal': Buffer.from('{"userId":"admin"}').toString('base64'),
    'x-ms-client-principal-name': 'admin@example.com',
    'x-ms-client-principal-id': '00000000-0000-0000-0000-000000000000',
    'x-ms-token-aad-access-token': 'forged',
    'x-auth-request-user': 'admin',
    'x-auth-request-email': 'admin@example.com',
    'x-remote-user': 'system:admin',
    'x-remote-group': 'system:masters',
    'x-goog-authenticated-user-email': 'accounts.google.com:admin@example.com',
    'x-amzn-oidc-identity': 'admin',
    'cf-access-authenticated-user-email': 'admin@example.com',
    'x-original-url': '/admin',
  };
  const reply = await call(proxy, {
    method: 'DELETE',
    headers: { ...claimed, 'mcp-session-id': 'up-unknown', 'x-trace': 'kept' },
  });
  assert.is(reply.status, 200);
  const sent = seen[0]!.headers;
  for (const name of Object.keys(claimed)) assert.is(sent[name], undefined, name);
  assert.is(sent['x-trace'], 'kept');
  assert.is(sent['mcp-session-id'], 'up-unknown');
  assert.is(sent['x-upstream-key'], 'upstream-secret', "the manifest's own headers");
});

test.run();
