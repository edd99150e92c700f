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

test.run();
