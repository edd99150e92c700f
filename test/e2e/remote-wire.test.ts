import { createServer, type Server } from 'node:http';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { createLogger, type Logger } from '../../src/log.js';
import { createRemoteUpstream } from '../../src/upstream/remote.js';
import type { Upstream } from '../../src/upstream/types.js';
import { within } from '../support/proxy.js';
import { callOnce, remoteSpec, type Reply } from '../support/remote.js';

// The remote passthrough on the wire to its upstream: what it writes, how it reads what comes back, and
// when it keeps a connection for the next exchange. The upstream is a TCP server on 127.0.0.1 that answers
// with scripted bytes; the client is node:http through a real HTTP server that hands requests to the
// upstream, as the gateway does.

const BOUND_MS = 10_000;
const PROXY_REQUEST_ID = 'proxy-request-id';

/** What the scripted upstream saw: the text of each request, and which connection (0, 1…) it came on. */
interface Seen {
  requests: { text: string; connection: number }[];
  connections: number;
}

/**
 * How the scripted upstream answers each request (the `index`th, on connection `connection`): these bytes;
 * `close`: and then it closes the connection.
 */
type Script = (request: string, index: number, connection: number) => string | { bytes: string; close: true };

/** Answers each request (read up to its blank line and Content-Length body) as `script` says. */
async function scriptedUpstream(
  script: Script,
): Promise<{ server: TcpServer; port: number; seen: Seen; sockets: Socket[] }> {
  const seen: Seen = { requests: [], connections: 0 };
  const sockets: Socket[] = [];
  const server = createTcpServer((socket) => {
    const connection = seen.connections++;
    sockets.push(socket);
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(buffered.slice(0, headEnd))?.[1] ?? 0);
        const end = headEnd + 4 + length;
        if (buffered.length < end) return;
        const text = buffered.slice(0, end);
        buffered = buffered.slice(end);
        seen.requests.push({ text, connection });
        const answer = script(text, seen.requests.length - 1, connection);
        if (typeof answer === 'string') socket.write(answer, 'latin1');
        else socket.end(answer.bytes, 'latin1');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen, sockets };
}

/** What a test started, for after() to stop: `sockets` are the scripted upstream's ends of its connections. */
interface Started {
  upstream: Upstream;
  server: Server;
  tcp: TcpServer;
  sockets: Socket[];
}

const test = suite<{ started: Started[] }>('remote wire', { started: [] });

/** The passthrough to a scripted upstream, behind a node:http server; returns a function sending requests. */
async function passthrough(
  context: { started: Started[] },
  script: Script,
  { path = '/mcp', userinfo = '', log }: { path?: string; userinfo?: string; log?: Logger } = {},
): Promise<{ call: (body?: string) => Promise<Reply>; seen: Seen; upstream: Upstream }> {
  const { server: tcp, port: upstreamPort, seen, sockets } = await scriptedUpstream(script);
  const upstream = createRemoteUpstream(
    remoteSpec('scripted', `http://${userinfo}127.0.0.1:${upstreamPort}${path}`),
    { log },
  );
  await upstream.start();
  const server = createServer((req, res) => {
    // As the gateway does, before any upstream answers (mcp-endpoint.ts).
    res.setHeader('X-Request-Id', PROXY_REQUEST_ID);
    void upstream.handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  context.started.push({ upstream, server, tcp, sockets });
  const { port } = server.address() as AddressInfo;
  const call = (body = '{}') => callOnce(port, { body, boundMs: BOUND_MS });
  return { call, seen, upstream };
}

test.after(async ({ started }) => {
  // Every server is closed even if a stop() times out (open servers would keep the run from ending); the
  // first such failure is thrown once all are closed.
  const stopped = await Promise.allSettled(
    started.map(({ upstream }) => within(upstream.stop(), 'an upstream to stop', BOUND_MS)),
  );
  for (const { server, tcp, sockets } of started) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    // A connection the passthrough kept (a stop() that timed out) would hold tcp.close() for ever.
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => tcp.close(resolve));
  }
  for (const result of stopped) if (result.status === 'rejected') throw result.reason;
});

const ok = (extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${extra}\r\nok`;

test('a small request goes out as one head with its body, framed by Content-Length, Host the upstream', async (context) => {
  const { call, seen } = await passthrough(context, () => ok(), { path: '/mcp?x=1' });
  const reply = await call('{"jsonrpc":"2.0"}');
  assert.is(reply.body, 'ok');
  const text = seen.requests[0]!.text;
  assert.match(text, /^POST \/mcp\?x=1 HTTP\/1\.1\r\n/);
  assert.match(text, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
  assert.match(text, /\r\ncontent-length: 17\r\n\r\n\{"jsonrpc":"2\.0"\}$/);
  assert.not.match(text, /transfer-encoding/i);
});

test('sequential exchanges share one connection; Connection: close, a short Keep-Alive or a close-delimited body end it', async (context) => {
  const scripts: [string, string, number][] = [
    ['kept', ok(), 1],
    ['connection: close', ok('connection: close\r\n'), 3],
    ['keep-alive timeout=1', ok('keep-alive: timeout=1\r\n'), 3],
    ['HTTP/1.0', 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok', 3],
  ];
  for (const [what, response, connections] of scripts) {
    const { call, seen } = await passthrough(context, () => response);
    for (let i = 0; i < 3; i++) assert.is((await call()).body, 'ok', what);
    assert.is(seen.connections, connections, what);
  }
});

test('an upstream that names no Keep-Alive timeout: a connection idle for 4 s is not reused (decision 0032)', async (context) => {
  // As uvicorn does, closing idle connections after 5 s without saying so: a request that arrives as it
  // closes one goes unanswered. Here that happens to any request on a connection idle for 4.2 s or more.
  const answeredAt = new Map<number, number>();
  const { call, seen } = await passthrough(context, (_, __, connection) => {
    const idleSince = answeredAt.get(connection);
    if (idleSince !== undefined && Date.now() - idleSince >= 4200) return { bytes: '', close: true };
    answeredAt.set(connection, Date.now());
    return ok();
  });
  assert.is((await call()).body, 'ok');
  await new Promise((resolve) => setTimeout(resolve, 4300));
  const late = await call();
  assert.is(late.status, 200, late.body);
  assert.is(late.body, 'ok');
  assert.is(seen.connections, 2);
});

test('a body delimited by the end of the connection is relayed whole, and the client response ends cleanly', async (context) => {
  const { call, seen } = await passthrough(context, () => ({
    bytes: 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello, until close',
    close: true,
  }));
  for (let i = 0; i < 2; i++) {
    const reply = await call();
    assert.is(reply.body, 'hello, until close');
    assert.ok(reply.complete);
  }
  assert.is(seen.connections, 2);
});

test('bytes after a complete response: the client has its answer, and the connection is not used again', async (context) => {
  const { call, seen } = await passthrough(
    context,
    () => `${ok()}HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nextra`,
  );
  assert.is((await call()).body, 'ok');
  assert.is((await call()).body, 'ok');
  assert.is(seen.connections, 2);
});

test('a chunked response is relayed decoded, and the connection kept', async (context) => {
  const chunked =
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\ntrailer: x\r\n\r\n';
  const { call, seen } = await passthrough(context, () => chunked);
  for (let i = 0; i < 2; i++) {
    const reply = await call();
    assert.is(reply.body, 'abcde');
    assert.ok(reply.complete);
  }
  assert.is(seen.connections, 1);
});

test('a malformed response is a 502 before its head, a cut response after it', async (context) => {
  const before = await passthrough(context, () => 'HTTP/1.1 2OO OK\r\n\r\n');
  const refused = await before.call();
  assert.is(refused.status, 502);
  assert.match(JSON.parse(refused.body).error.message, 'upstream scripted sent an invalid response: ');
  const after = await passthrough(
    context,
    () => 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n',
  );
  const cut = await after.call();
  assert.is(cut.status, 200);
  assert.is(cut.body, 'abc', 'what came before the fault');
  assert.is(cut.complete, false, 'a cut response must not look complete');
  assert.match(after.upstream.status().lastError ?? '', 'upstream scripted sent an invalid response: ');
});

test('repeated response fields reach the client as the upstream repeated them; hop-by-hop ones and cookies stop', async (context) => {
  const response =
    'HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nlink: <a>\r\nlink: <b>\r\n' +
    'keep-alive: timeout=30\r\nconnection: x-hop\r\nx-hop: no\r\ncontent-length: 2\r\n\r\nok';
  const { call } = await passthrough(context, () => response);
  const reply = await call();
  const links = reply.rawHeaders.filter(
    (_, i) => i % 2 === 1 && reply.rawHeaders[i - 1]!.toLowerCase() === 'link',
  );
  assert.equal(links, ['<a>', '<b>']);
  // One origin serves every server: a cookie one set would reach the others (remote.ts, exchange.ts).
  assert.is(reply.headers['set-cookie'], undefined);
  assert.is(reply.headers['x-hop'], undefined);
  assert.is.not(reply.headers['keep-alive'], 'timeout=30', "the upstream's Keep-Alive is its own");
});

test("fields about the proxy's origin, its challenge, and its request id are not the upstream's to set", async (context) => {
  const stopped = [
    'www-authenticate: Bearer resource_metadata="https://evil.example/.well-known/oauth-protected-resource"',
    'location: https://evil.example/',
    'access-control-allow-origin: *',
    'access-control-allow-credentials: true',
    'Access-Control-Expose-Headers: mcp-session-id',
    'strict-transport-security: max-age=63072000; includeSubDomains',
    'clear-site-data: "*"',
    'alt-svc: h3=":443"',
    'server: upstream/1.0',
    'x-request-id: upstream-id',
  ];
  const { call } = await passthrough(context, () => ok(`${stopped.join('\r\n')}\r\nlink: <a>\r\n`));
  const reply = await call();
  assert.is(reply.status, 200);
  assert.is(reply.body, 'ok');
  for (const field of stopped) {
    const name = field.slice(0, field.indexOf(':')).toLowerCase();
    if (name !== 'x-request-id') assert.is(reply.headers[name], undefined, name);
  }
  assert.is(reply.headers['x-request-id'], PROXY_REQUEST_ID, "the proxy's, which its access log names");
  assert.is(reply.headers.link, '<a>', 'other end-to-end fields pass');
});

test('an upstream redirect is a 502 naming where it pointed, without query or credentials; nothing else of it is relayed', async (context) => {
  const { call, seen, upstream } = await passthrough(
    context,
    () =>
      'HTTP/1.1 307 Temporary Redirect\r\nlocation: https://user:secret@evil.example/steal?key=abc\r\n' +
      'set-cookie: a=1\r\ncontent-length: 4\r\n\r\nmove',
  );
  const reply = await call('{"jsonrpc":"2.0","id":7,"method":"ping"}');
  assert.is(reply.status, 502);
  assert.is(reply.headers.location, undefined);
  const { id, error } = JSON.parse(reply.body);
  assert.is(id, 7);
  assert.is(
    error.message,
    'upstream scripted redirected (307) to https://evil.example/steal; the proxy does not follow redirects: ' +
      "set the server's url to where it is served",
  );
  assert.is(upstream.status().lastError, error.message);
  // Not followed: the upstream saw the one request.
  assert.is(seen.requests.length, 1);
  const relative = await passthrough(context, () => 'HTTP/1.1 302 Found\r\nlocation: /v2/mcp?x=1\r\n\r\n');
  assert.match(JSON.parse((await relative.call()).body).error.message, 'redirected (302) to /v2/mcp;');
});

test("a 401 or 403 from the upstream is a 502: the proxy's credentials for it were refused, and its challenge is not relayed", async (context) => {
  for (const status of [401, 403]) {
    const { call, upstream } = await passthrough(
      context,
      () =>
        `HTTP/1.1 ${status} No\r\nwww-authenticate: Bearer resource_metadata="https://evil.example/"\r\n` +
        'content-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
    );
    const reply = await call();
    assert.is(reply.status, 502, String(status));
    assert.is(reply.headers['www-authenticate'], undefined);
    const { message } = JSON.parse(reply.body).error;
    assert.is(
      message,
      `upstream scripted refused the proxy's credentials for it (${status}): check its headers or workload identity`,
    );
    assert.is(upstream.status().lastError, message);
  }
});

/** A logger that keeps the events it writes, in order. */
function eventLog(): { log: Logger; events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = [];
  const log = createLogger('debug', (lines) => {
    for (const line of lines.split('\n')) if (line !== '') events.push(JSON.parse(line));
  });
  return { log, events };
}

test('a 5xx is relayed with its body, recorded as the last error and logged once for many', async (context) => {
  const { log, events } = eventLog();
  const { call, upstream } = await passthrough(
    context,
    () => 'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nbusy',
    { log },
  );
  for (let i = 0; i < 3; i++) {
    const reply = await call();
    assert.is(reply.status, 503);
    assert.is(reply.body, 'busy', 'the client may want the body');
  }
  assert.is(upstream.status().lastError, 'upstream scripted answered 503');
  assert.is(upstream.status().state, 'ready');
  const failures = events.filter(({ event }) => event === 'upstream-failed');
  assert.equal(
    failures.map(({ level, reason }) => [level, reason]),
    [['warn', 'upstream scripted answered 503']],
    'one line, not one per request',
  );
});

test('a POST answered 200 with neither JSON nor an event stream is relayed and recorded; a 202, or a 200 with no content type, is not', async (context) => {
  const { log, events } = eventLog();
  const { call, upstream } = await passthrough(
    context,
    (request) =>
      request.includes('"notify"')
        ? 'HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n'
        : request.includes('"untyped"')
          ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'
          : 'HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: 7\r\n\r\n<html/>',
    { log },
  );
  assert.is((await call('{"notify":1}')).status, 202);
  assert.is((await call('{"untyped":1}')).status, 200);
  assert.is(upstream.status().lastError, undefined);
  const reply = await call();
  assert.is(reply.body, '<html/>');
  const message =
    'upstream scripted answered a POST (200) with content type text/html, neither application/json nor text/event-stream';
  assert.is(upstream.status().lastError, message);
  assert.ok(events.some(({ event, reason }) => event === 'upstream-failed' && reason === message));
});

test('credentials in the URL go to the upstream as Basic authorization', async (context) => {
  const { call, seen } = await passthrough(context, () => ok(), { userinfo: 'user:p%40ss@' });
  await call();
  const expected = `Basic ${Buffer.from('user:p@ss').toString('base64')}`;
  assert.match(seen.requests[0]!.text, `\r\nauthorization: ${expected}\r\n`);
});

test.run();
