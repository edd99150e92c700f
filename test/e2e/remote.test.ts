import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import type { RemoteServerSpec } from '../../src/manifest/types.js';
import { createRemoteUpstream } from '../../src/upstream/remote.js';
import type { Upstream } from '../../src/upstream/types.js';
import { close, listen, readAll } from '../support/http.js';
import { startHttpFixture, waitFor, within, type HttpFixture } from '../support/proxy.js';
import { remoteSpec } from '../support/remote.js';

/** Upper bound on every wait here; each should be over within milliseconds. */
const BOUND_MS = 10_000;
const SDK_OPTIONS = { timeout: BOUND_MS };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const portOf = (server: Server) => (server.address() as AddressInfo).port;

/** An upstream behind a bare node:http server, as the gateway will hand it requests. */
interface Proxied {
  upstream: Upstream;
  port: number;
  /** handle() calls that have not resolved yet. */
  active(): number;
}

const proxies: { upstream: Upstream; server: Server }[] = [];

async function proxy(spec: RemoteServerSpec, maxBodyBytes?: number): Promise<Proxied> {
  const upstream = createRemoteUpstream(
    spec,
    maxBodyBytes === undefined ? {} : { maxBodyBytes: () => maxBodyBytes },
  );
  await upstream.start();
  let active = 0;
  const server = await listen(
    createServer((req, res) => {
      active += 1;
      void upstream.handle(req, res).finally(() => (active -= 1));
    }),
  );
  proxies.push({ upstream, server });
  return { upstream, port: portOf(server), active: () => active };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Opens a request to 127.0.0.1:port; resolves with the response as soon as its headers arrive. */
function open(
  port: number,
  options: { method?: string; path?: string; headers?: OutgoingHttpHeaders; body?: string } = {},
): Promise<IncomingMessage> {
  return within(
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: options.path ?? '/', ...options }, resolve);
      req.on('error', reject);
      req.end(options.body);
    }),
    'response headers',
  );
}

async function send(port: number, options: Parameters<typeof open>[1] = {}): Promise<Reply> {
  const res = await open(port, options);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body: await within(readAll(res), 'response body'),
  };
}

/** The next chunk of a streaming response. */
function nextChunk(res: IncomingMessage): Promise<string> {
  return within(
    new Promise((resolve) => res.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8')))),
    'a chunk of the stream',
  );
}

const closed = (emitter: IncomingMessage | ServerResponse) =>
  emitter.destroyed
    ? Promise.resolve()
    : new Promise<void>((resolve) => emitter.once('close', () => resolve()));

// ---------------------------------------------------------------------------------------------------------
// A real MCP upstream: the conformance fixture as its own process, over HTTP.

let fixture: HttpFixture | undefined;
let conformance: Proxied;

async function connect(
  setup?: (client: Client) => void,
  port = conformance.port,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'remote-e2e', version: '1.0.0' }, { capabilities: { sampling: {} } });
  setup?.(client);
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`));
  await within(client.connect(transport), 'initialize');
  return { client, transport };
}

// ---------------------------------------------------------------------------------------------------------
// A raw upstream that shows what arrived and streams on cue. The scenario is the path of the upstream URL
// (a header may override it, to send one upstream's requests to several scenarios).

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The proxy's end of the connection the request came on. */
  port: number | undefined;
}

let raw: Server;
let recorded: Recorded | undefined;
/** Released by a test to let /sse-gated send its first event, then its second. */
let gates = [deferred(), deferred()];
/** Resolves when /hang has a request. */
let hangArrived = deferred();
/** Resolves when an upstream request of the held scenarios (/sse-hold, /hang) is closed. */
let upstreamClosed = deferred();
/** Resolves when /upload has received the first chunk of its body. */
let firstChunk = deferred();
/** What /flood has written so far, of FLOOD_BYTES. */
let flooded = 0;
const FLOOD_BYTES = 64 * 1024 * 1024;
const FLOOD_CHUNK = Buffer.alloc(64 * 1024, 'f');

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
const event = (n: number) => `id: ${n}\ndata: {"n":${n}}\n\n`;

async function rawUpstream(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const scenario = req.headers['x-scenario'] ?? new URL(req.url ?? '/', 'http://x').pathname;
  switch (scenario) {
    case '/record': {
      recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: await readAll(req),
        port: req.socket.remotePort,
      };
      res.writeHead(200, {
        'content-type': 'application/json',
        'mcp-session-id': 'session-from-upstream',
        'x-upstream-custom': 'kept',
        'set-cookie': 'planted=1; Path=/',
        connection: 'keep-alive, x-upstream-hop',
        'x-upstream-hop': 'dropped',
      });
      return void res.end('{"ok":true}');
    }
    case '/sse-gated':
      res.writeHead(200, SSE_HEADERS).flushHeaders();
      await gates[0]!.promise;
      res.write(event(1));
      await gates[1]!.promise;
      return void res.end(event(2));
    case '/sse-hold':
      res.on('close', () => upstreamClosed.resolve());
      res.writeHead(200, SSE_HEADERS);
      return void res.write(event(1));
    case '/sse-cut':
      res.writeHead(200, SSE_HEADERS);
      res.write(event(1));
      return void setTimeout(() => res.socket?.destroy(), 50);
    case '/sse-after-headers':
      // The answer to a call, a while after the headers, as the SDK's server sends it.
      res.writeHead(200, SSE_HEADERS).flushHeaders();
      return void setTimeout(() => res.end(event(1)), 20);
    case '/sse-late':
      res.writeHead(200, SSE_HEADERS).flushHeaders();
      return void setTimeout(() => res.end(event(1)), 300);
    case '/cut-after-headers':
      res.writeHead(200, SSE_HEADERS).flushHeaders();
      return void setImmediate(() => res.socket?.destroy());
    case '/flood': {
      // Writes as fast as the proxy takes it: only backpressure from the client holds it back.
      flooded = 0;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      while (flooded < FLOOD_BYTES) {
        flooded += FLOOD_CHUNK.length;
        if (!res.write(FLOOD_CHUNK)) await new Promise((resolve) => res.once('drain', resolve));
      }
      return void res.end();
    }
    case '/hang':
      hangArrived.resolve();
      return void res.on('close', () => upstreamClosed.resolve());
    case '/upload': {
      let bytes = 0;
      try {
        for await (const chunk of req) {
          if (bytes === 0) firstChunk.resolve();
          bytes += (chunk as Buffer).length;
        }
      } catch {
        return; // the proxy cut the upload short (the body-limit test): nothing to answer
      }
      return void res.end(String(bytes));
    }
    default:
      res.writeHead(404).end();
  }
}

const rawUrl = (path: string) => `http://127.0.0.1:${portOf(raw)}${path}`;

test.before(async () => {
  raw = await listen(createServer((req, res) => void rawUpstream(req, res)));
  fixture = await startHttpFixture();
  conformance = await proxy(remoteSpec('conformance', fixture.url));
});

test.before.each(() => {
  // Each test reads what its own exchange left, never an earlier test's.
  recorded = undefined;
});

test.after(async () => {
  for (const gate of gates) gate.resolve();
  // Every server is closed and the fixture stopped even if a stop() times out (either would keep the run
  // from ending); the first such failure is thrown once all are.
  const stopped = await Promise.allSettled(
    proxies.map(({ upstream }) => within(upstream.stop(), 'an upstream to stop')),
  );
  for (const { server } of proxies) await close(server);
  await close(raw);
  await fixture?.stop();
  for (const result of stopped) if (result.status === 'rejected') throw result.reason;
});

// ---------------------------------------------------------------------------------------------------------

test('status: a started remote server is ready, with no processes, restarts or stderr', () => {
  const status = conformance.upstream.status();
  assert.equal(status, {
    name: 'conformance',
    kind: 'remote',
    state: 'ready',
    pids: [],
    sessions: 0,
    restarts: 0,
    lastError: undefined,
    stderr: [],
  });
});

test('an SDK client initializes, lists tools and calls a tool through the passthrough', async () => {
  const { client } = await connect();
  try {
    assert.is(client.getServerVersion()?.name, 'mcp-conformance-fixture');
    const { tools } = await client.listTools(undefined, SDK_OPTIONS);
    assert.ok(tools.some((tool) => tool.name === 'test_simple_text'));
    const result = await client.callTool({ name: 'test_simple_text', arguments: {} }, undefined, SDK_OPTIONS);
    assert.equal(result.content, [{ type: 'text', text: 'This is a simple text response for testing.' }]);
  } finally {
    await client.close();
  }
});

test('progress notifications arrive while the tool runs', async () => {
  const { client } = await connect();
  try {
    const progress: number[] = [];
    const result = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
      ...SDK_OPTIONS,
      onprogress: (p) => progress.push(p.progress),
    });
    assert.equal(progress, [0, 50, 100]);
    assert.equal(result.content, [{ type: 'text', text: 'Tool with progress executed successfully' }]);
  } finally {
    await client.close();
  }
});

test('a server-to-client sampling request travels through the passthrough and back', async () => {
  const { client } = await connect((c) =>
    c.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      const asked = request.params.messages[0]?.content;
      const text = asked && 'text' in asked ? asked.text : '?';
      return { role: 'assistant', model: 'test', content: { type: 'text', text: `echo ${text}` } };
    }),
  );
  try {
    const result = await client.callTool(
      { name: 'test_sampling', arguments: { prompt: 'hi' } },
      undefined,
      SDK_OPTIONS,
    );
    assert.equal(result.content, [{ type: 'text', text: 'LLM response: echo hi' }]);
  } finally {
    await client.close();
  }
});

test('a 1 MiB tool argument makes the round trip', async () => {
  const { client } = await connect();
  try {
    const big = 'x'.repeat(1024 * 1024);
    const result = await client.callTool(
      { name: 'json_schema_2020_12_tool', arguments: { name: big } },
      undefined,
      SDK_OPTIONS,
    );
    assert.equal(result.content, [{ type: 'text', text: `Received: ${JSON.stringify({ name: big })}` }]);
  } finally {
    await client.close();
  }
});

test('a session counts from its initialize until terminateSession sends DELETE', async () => {
  const before = conformance.upstream.status().sessions;
  const { client, transport } = await connect();
  try {
    assert.is(conformance.upstream.status().sessions, before + 1);
    await within(transport.terminateSession(), 'DELETE');
    assert.is(transport.sessionId, undefined);
    assert.is(conformance.upstream.status().sessions, before);
  } finally {
    await client.close();
  }
});

test('maxSessions: one initialize past the limit is answered 503 with Retry-After; a session that ends frees its place', async () => {
  const capped = await proxy({
    ...conformance.upstream.spec,
    name: 'capped',
    maxSessions: 2,
  } as RemoteServerSpec);
  // Each closed whatever fails after it opened: the second connect included.
  const first = await connect(undefined, capped.port);
  let second: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    second = await connect(undefined, capped.port);
    const initialize = {
      jsonrpc: '2.0',
      id: 'over',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    const over = () =>
      send(capped.port, {
        method: 'POST',
        path: '/mcp',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(initialize),
      });
    const refused = await over();
    assert.is(refused.status, 503);
    assert.is(refused.headers['retry-after'], '5');
    assert.match(refused.body, 'server capped has reached its limit of 2 sessions; retry later');
    // Requests on the sessions already open are not counted against the limit.
    await second.client.ping();
    await within(first.transport.terminateSession(), 'DELETE');
    const third = await connect(undefined, capped.port);
    await third.client.close();
  } finally {
    await first.client.close();
    await second?.client.close();
  }
});

test("the client's Authorization stays behind; configured headers are added and win; hop-by-hop headers are dropped", async () => {
  const { port } = await proxy(
    remoteSpec('headers', rawUrl('/record'), { headers: { 'X-Api-Key': 'configured', 'X-Extra': 'added' } }),
  );
  const reply = await send(port, {
    method: 'POST',
    headers: {
      authorization: 'Bearer client-token',
      'proxy-authorization': 'Basic client',
      connection: 'keep-alive, x-hop',
      'x-hop': 'named in Connection',
      te: 'trailers',
      upgrade: 'h2c',
      'x-api-key': 'from-client',
      'x-client': 'kept',
    },
    body: '{}',
  });
  assert.is(reply.status, 200);
  const headers = recorded!.headers;
  for (const name of ['authorization', 'proxy-authorization', 'x-hop', 'te', 'upgrade']) {
    assert.is(headers[name], undefined, `${name} reached the upstream`);
  }
  assert.is(headers.host, `127.0.0.1:${portOf(raw)}`);
  assert.is(headers['x-api-key'], 'configured');
  assert.is(headers['x-extra'], 'added');
  assert.is(headers['x-client'], 'kept');
});

test("the client's X-API-Key and cookies stay behind; an upstream's Set-Cookie does not reach the client", async () => {
  // Both are the proxy's: an API key may open every server, and one origin serves them all.
  const { port } = await proxy(remoteSpec('credentials', rawUrl('/record')));
  const reply = await send(port, {
    method: 'POST',
    headers: { 'x-api-key': 'proxy-key-0123456789', cookie: 'other_app_session=abc123', 'x-client': 'kept' },
    body: '{}',
  });
  assert.is(reply.status, 200);
  assert.is(recorded!.headers['x-api-key'], undefined, 'the proxy credential reached the upstream');
  assert.is(recorded!.headers.cookie, undefined, 'cookies reached the upstream');
  assert.is(recorded!.headers['x-client'], 'kept');
  assert.is(reply.headers['set-cookie'], undefined, "the upstream's cookie reached the client");
  assert.is(reply.headers['x-upstream-custom'], 'kept');
});

test('a configured Authorization is sent in place of the client one', async () => {
  const { port } = await proxy(
    remoteSpec('configured-auth', rawUrl('/record'), { headers: { Authorization: 'Bearer configured' } }),
  );
  assert.is((await send(port, { headers: { authorization: 'Bearer client-token' } })).status, 200);
  assert.is(recorded!.headers.authorization, 'Bearer configured');
});

test('method, body, session id, protocol version, Last-Event-ID, Accept and Content-Type pass through both ways', async () => {
  const { port, upstream } = await proxy(remoteSpec('passthrough', rawUrl('/record?from=manifest')));
  const body = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
  const reply = await send(port, {
    method: 'POST',
    path: '/servers/passthrough/mcp?from=client',
    headers: {
      'mcp-session-id': 'session-from-client',
      'mcp-protocol-version': '2025-11-25',
      'last-event-id': '42',
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
    },
    body,
  });
  assert.equal(
    { method: recorded!.method, url: recorded!.url, body: recorded!.body },
    { method: 'POST', url: '/record?from=manifest', body },
  );
  const sent = recorded!.headers;
  assert.is(sent['mcp-session-id'], 'session-from-client');
  assert.is(sent['mcp-protocol-version'], '2025-11-25');
  assert.is(sent['last-event-id'], '42');
  assert.is(sent.accept, 'application/json, text/event-stream');
  assert.is(sent['content-type'], 'application/json');

  assert.is(reply.status, 200);
  assert.is(reply.body, '{"ok":true}');
  assert.is(reply.headers['content-type'], 'application/json');
  assert.is(reply.headers['mcp-session-id'], 'session-from-upstream');
  assert.is(reply.headers['x-upstream-custom'], 'kept');
  assert.is(reply.headers['x-upstream-hop'], undefined);
  // Not an initialize answer (the request carried a session id): nothing to count.
  assert.is(upstream.status().sessions, 0);
});

/**
 * A proxy like proxy()'s that records what it hands the client's socket, one entry per write (a write
 * batched with writev counts once).
 */
async function proxyRecordingWrites(spec: RemoteServerSpec): Promise<{ port: number; writes: string[] }> {
  const upstream = createRemoteUpstream(spec);
  const writes: string[] = [];
  const server = await listen(
    createServer((req, res) => {
      const socket = req.socket;
      const write = socket._write.bind(socket);
      const writev = socket._writev!.bind(socket);
      socket._write = (chunk: Buffer, encoding, callback) => {
        writes.push(chunk.toString('latin1'));
        write(chunk, encoding, callback);
      };
      socket._writev = (chunks, callback) => {
        writes.push(chunks.map(({ chunk }) => Buffer.from(chunk).toString('latin1')).join(''));
        writev(chunks, callback);
      };
      void upstream.handle(req, res);
    }),
  );
  proxies.push({ upstream, server });
  return { port: portOf(server), writes };
}

test('a short answer leaves in one write: headers, body and the end of the stream together', async () => {
  const { port, writes } = await proxyRecordingWrites(remoteSpec('one-write', rawUrl('/record')));
  // The upstream sends its answer in one write, so it reaches the proxy in one read.
  const reply = await send(port, { method: 'POST', body: '{}' });
  assert.is(reply.body, '{"ok":true}');
  assert.is(writes.length, 1, `${writes.length} writes: ${JSON.stringify(writes)}`);
  assert.match(writes[0]!, /^HTTP\/1\.1 200 OK\r\n.*\r\n\r\nb\r\n\{"ok":true\}\r\n0\r\n\r\n$/s);
});

test('an SSE event that comes after the headers leaves with the end of the stream, in one write', async () => {
  const { port, writes } = await proxyRecordingWrites(remoteSpec('sse-after', rawUrl('/sse-after-headers')));
  const reply = await send(port, { method: 'POST', body: '{}' });
  assert.is(reply.body, event(1));
  // The headers go ahead alone once they have waited their millisecond for the event (or with it, if the
  // proxy happened to read both at once); the event and the end of the stream leave together.
  assert.ok(writes.length <= 2, JSON.stringify(writes));
  assert.match(writes[0]!, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(writes.at(-1)!, `15\r\n${event(1)}\r\n0\r\n\r\n`);
});

test('sequential exchanges reuse one upstream connection', async () => {
  const { port } = await proxy(remoteSpec('keep-alive', rawUrl('/record')));
  const ports = new Set<number | undefined>();
  for (let i = 0; i < 3; i++) {
    // A 200 comes only from /record, which has just set `recorded`: the port is this exchange's.
    assert.is((await send(port, { method: 'POST', body: '{}' })).status, 200);
    ports.add(recorded!.port);
  }
  assert.is(ports.size, 1);
});

test('SSE headers and each event reach the client before the upstream has sent the next', async () => {
  gates = [deferred(), deferred()];
  const { port } = await proxy(remoteSpec('sse', rawUrl('/sse-gated')));
  // The upstream sends nothing after its headers until the client has them, then one event at a time.
  const res = await open(port, { headers: { accept: 'text/event-stream' } });
  assert.is(res.headers['content-type'], 'text/event-stream');
  assert.is(res.headers['x-accel-buffering'], 'no');
  gates[0]!.resolve();
  assert.is(await nextChunk(res), event(1));
  gates[1]!.resolve();
  assert.is(await within(readAll(res), 'the end of the stream'), event(2));
});

test('a request body streams to the upstream before the client has finished sending it', async () => {
  firstChunk = deferred();
  const { port } = await proxy(remoteSpec('upload', rawUrl('/upload')));
  const reply = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST' }, resolve);
    req.on('error', reject);
    req.write('a'.repeat(1000));
    // The rest is sent only once the upstream has the start of it.
    void within(firstChunk.promise, 'the first chunk upstream').then(() => req.end('b'.repeat(1000)), reject);
  });
  assert.is(await within(reply.then(readAll), 'the upload reply'), '2000');
});

test('a body streamed without Content-Length past the limit is answered 413 and not passed on', async () => {
  const { port } = await proxy(remoteSpec('limited', rawUrl('/upload')), 1500);
  const reply = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST' }, resolve); // chunked: no length declared
    req.on('error', () => {}); // the proxy may close while the rest is still being sent
    req.write('a'.repeat(1000));
    setTimeout(() => req.end('b'.repeat(1000)), 50);
    void reject;
  });
  const response = await within(reply, 'the 413');
  assert.is(response.statusCode, 413);
  assert.match(await readAll(response), 'request body exceeds 1500 bytes');
});

test('a response that has started streaming is not cut by the timeout', async () => {
  const { port } = await proxy(remoteSpec('late', rawUrl('/sse-late'), { timeoutMs: 100 }));
  const reply = await send(port);
  assert.is(reply.status, 200);
  assert.is(reply.body, event(1));
});

test('an unreachable upstream answers 502 with a JSON-RPC error naming the request id', async () => {
  const vacant = await listen(createServer(() => {}));
  const port = portOf(vacant);
  await close(vacant);
  const { port: proxyPort, upstream } = await proxy(remoteSpec('dead', `http://127.0.0.1:${port}/mcp`));

  const reply = await send(proxyPort, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":7,"method":"tools/list"}',
  });
  assert.is(reply.status, 502);
  assert.is(reply.headers['content-type'], 'application/json');
  const body = JSON.parse(reply.body);
  assert.is(body.jsonrpc, '2.0');
  assert.is(body.id, 7);
  assert.is(body.error.code, -32000);
  assert.match(body.error.message, /^upstream dead unreachable: .*ECONNREFUSED/);
  assert.is(upstream.status().lastError, body.error.message);
  assert.is(upstream.status().state, 'ready');

  const get = await send(proxyPort);
  assert.is(get.status, 502);
  assert.is(JSON.parse(get.body).id, null);
});

test('a TLS failure answers 502 too', async () => {
  // The raw upstream speaks plain HTTP, so the TLS handshake fails.
  const { port } = await proxy(remoteSpec('tls', rawUrl('/record').replace('http:', 'https:')));
  const reply = await send(port, { method: 'POST', body: '{"jsonrpc":"2.0","id":3,"method":"ping"}' });
  assert.is(reply.status, 502);
  const body = JSON.parse(reply.body);
  assert.is(body.id, 3);
  assert.match(body.error.message, /^upstream tls unreachable: /);
});

test('a response Node cannot relay (status 099) answers 502 instead of crashing the process', async () => {
  const liar = createTcpServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 099 Low\r\ncontent-length: 0\r\n\r\n'));
  });
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
  try {
    const { port, upstream } = await proxy(
      remoteSpec('liar', `http://127.0.0.1:${(liar.address() as AddressInfo).port}/mcp`),
    );
    const reply = await send(port);
    assert.is(reply.status, 502);
    assert.match(JSON.parse(reply.body).error.message, 'upstream liar sent an invalid response');
    assert.is(upstream.status().lastError, JSON.parse(reply.body).error.message);
  } finally {
    await new Promise((resolve) => liar.close(resolve));
  }
});

test('an upstream that never answers gets 504 after timeoutMs, and its request is aborted', async () => {
  upstreamClosed = deferred();
  const { port, upstream } = await proxy(remoteSpec('hang', rawUrl('/hang'), { timeoutMs: 150 }));
  const started = Date.now();
  const reply = await send(port, {
    method: 'POST',
    body: '{"jsonrpc":"2.0","id":"call-1","method":"tools/call"}',
  });
  assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
  assert.is(reply.status, 504);
  const body = JSON.parse(reply.body);
  assert.is(body.id, 'call-1');
  assert.match(body.error.message, 'upstream hang timed out: no response within 150 ms');
  assert.is(upstream.status().lastError, body.error.message);
  await within(upstreamClosed.promise, 'the upstream request to close');
});

test('a client that goes away before the upstream answers closes the upstream request', async () => {
  hangArrived = deferred();
  upstreamClosed = deferred();
  const { port, upstream, active } = await proxy(remoteSpec('impatient', rawUrl('/hang')));
  const req = request({ host: '127.0.0.1', port, method: 'POST' });
  req.on('error', () => {}); // the socket hang-up this test causes
  req.end('{}');
  await within(hangArrived.promise, 'the request to reach the upstream');
  req.destroy();
  await within(upstreamClosed.promise, 'the upstream request to close');
  await waitFor(() => active() === 0, BOUND_MS, 'handle() to resolve');
  assert.is(upstream.status().lastError, undefined, 'a client leaving is not an upstream failure');
});

test('a client that goes away mid-stream closes the upstream request', async () => {
  upstreamClosed = deferred();
  const { port, upstream, active } = await proxy(remoteSpec('leaver', rawUrl('/sse-hold')));
  const res = await open(port);
  assert.is(await nextChunk(res), event(1));
  res.destroy();
  await within(upstreamClosed.promise, 'the upstream request to close');
  await waitFor(() => active() === 0, BOUND_MS, 'handle() to resolve');
  assert.is(upstream.status().lastError, undefined, 'a client leaving is not an upstream failure');
});

test('an upstream that cuts its stream ends the client response', async () => {
  const { port, upstream, active } = await proxy(remoteSpec('cutter', rawUrl('/sse-cut')));
  const res = await open(port);
  res.on('error', () => {}); // the truncation shows as an aborted response
  let received = '';
  res.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  await within(closed(res), 'the client response to end');
  assert.is(received, event(1));
  assert.is(res.complete, false, 'a cut stream must not look complete');
  await waitFor(() => active() === 0, BOUND_MS, 'handle() to resolve');
  assert.match(upstream.status().lastError ?? '', 'upstream cutter cut its response');
});

test('an upstream that cuts its stream before any body leaves the client no complete response', async () => {
  const { port, upstream, active } = await proxy(remoteSpec('early-cut', rawUrl('/cut-after-headers')));
  // Depending on whether the held headers had gone out when the cut came, the client sees its connection
  // closed or a response that never completes: never a complete one.
  const outcome = await within(
    new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port }, (res) => {
        res.on('error', () => {});
        res.resume();
        res.on('close', () => resolve(res.complete ? 'complete' : 'cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end();
    }),
    'the client response to end',
  );
  assert.is(outcome, 'cut');
  await waitFor(() => active() === 0, BOUND_MS, 'handle() to resolve');
  assert.match(upstream.status().lastError ?? '', 'upstream early-cut cut its response');
});

test('a client that reads slowly holds the upstream back, still gets every byte, and the connection serves on', async () => {
  const { port } = await proxy(remoteSpec('flood', rawUrl('/flood')));
  const res = await open(port);
  res.pause();
  // Without backpressure the proxy would read all of it into memory while the client reads nothing. Held
  // back, the upstream stops writing: wait until its count has not moved for a quarter of a second (5 polls
  // of waitFor), instead of for a fixed time that a busy machine may not give the flood.
  let last = -1;
  let still = 0;
  await waitFor(
    () => {
      still = flooded === last ? still + 1 : 0;
      last = flooded;
      return still >= 5;
    },
    BOUND_MS,
    'the upstream to stop writing',
  );
  assert.ok(flooded < FLOOD_BYTES, `the upstream wrote ${flooded} bytes to a client that read none`);
  let received = 0;
  res.on('data', (chunk: Buffer) => (received += chunk.length));
  res.resume();
  await within(closed(res), 'the whole flood');
  assert.is(received, FLOOD_BYTES);
  // Held back to the end of the flood, the upstream connection must read again for the next exchange.
  const next = await send(port, { method: 'POST', body: '{}', headers: { 'x-scenario': '/record' } });
  assert.is(next.body, '{"ok":true}');
});

test('stop() ends in-flight exchanges, answers 503 afterwards and reports stopped', async () => {
  upstreamClosed = deferred();
  const { port, upstream, active } = await proxy(remoteSpec('stopper', rawUrl('/sse-hold')));
  const stream = await open(port);
  stream.on('error', () => {});
  assert.is(await nextChunk(stream), event(1));
  const waiting = send(port, { headers: { 'x-scenario': '/hang' } });
  await waitFor(() => active() === 2, BOUND_MS, 'both requests to be in flight');

  await upstream.stop();
  await within(closed(stream), 'the stream to end');
  const aborted = await waiting;
  assert.is(aborted.status, 503);
  assert.match(JSON.parse(aborted.body).error.message, 'upstream stopper is stopped');
  await within(upstreamClosed.promise, 'the upstream stream to close');

  const after = await send(port, { method: 'POST', body: '{}' });
  assert.is(after.status, 503);
  assert.is(after.headers['content-type'], 'application/json');
  assert.is(upstream.status().state, 'stopped');
  await waitFor(() => active() === 0, BOUND_MS, 'handle() to resolve');
});

test.run();
