import { mkdtempSync, rmSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { createRemoteUpstream } from '../../src/upstream/remote.js';
import { startEgressProxy, type EgressProxy } from '../support/egress-proxy.js';
import { makeTestCertificates } from '../support/identity-tls.js';
import { fromRoot } from '../support/paths.js';
import { close, listen } from '../support/http.js';
import { connect, postInitialize, startProxy, waitFor, within, type RunningProxy } from '../support/proxy.js';

/** Upper bound on every single wait here; each should be over within milliseconds. */
const BOUND_MS = 10_000;
const USER = 'egress-user';
/** Distinctive, and with characters that a proxy URL must percent-encode. */
const PASSWORD = 'pr0xy p@ss:word';
const PROXY_URL_PASSWORD = encodeURIComponent(PASSWORD);
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
/** What the refused proxy sends instead. */
const WRONG_PASSWORD = 'not-the-pr0xy-password';

interface Context {
  dir: string;
  egress: EgressProxy;
  /** The MCP server, over HTTPS (certificate for upstream.test, direct.test and 127.0.0.1) and over HTTP. */
  httpsUpstream: HttpsServer;
  httpUpstream: HttpServer;
  /** Host header of every request the MCP server received, in order. */
  upstreamHosts: string[];
  /** Sent through the proxy with the right credentials; NO_PROXY names direct.test. */
  proxy: RunningProxy;
  /** The same servers, with a password the egress proxy refuses. */
  refused: RunningProxy;
  /** HTTPS_PROXY names a port nobody listens on, HTTP_PROXY a SOCKS proxy. */
  broken: RunningProxy;
  deadPort: number;
}

const test = suite<Context>('egress proxy', {} as Context);
const clients: Client[] = [];

type Server = HttpServer | HttpsServer;

const portOf = (server: Server) => (server.address() as AddressInfo).port;

/** A stateless MCP server with one tool, `where`, that answers with the Host it was asked at. */
async function serveMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const server = new McpServer({ name: 'egress-upstream', version: '1.0.0' });
  server.registerTool('where', {}, async () => ({
    content: [{ type: 'text', text: req.headers.host ?? '' }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => void server.close());
  await server.connect(transport);
  await transport.handleRequest(req, res);
}

/** A port that was free a moment ago: nothing listens on it. */
async function deadPort(): Promise<number> {
  const server = await listen(createHttpServer());
  const port = portOf(server);
  await close(server);
  return port;
}

function manifest(httpsPort: number, httpPort: number): string {
  return [
    'servers:',
    `  tunnelled: { url: "https://upstream.test:${httpsPort}/mcp" }`,
    `  direct: { url: "https://direct.test:${httpsPort}/mcp" }`,
    `  loopback: { url: "https://127.0.0.1:${httpsPort}/mcp" }`,
    `  forwarded: { url: "http://upstream.test:${httpPort}/mcp" }`,
    '',
  ].join('\n');
}

test.before(async (context) => {
  context.dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-egress-'));
  const tls = makeTestCertificates(context.dir, ['upstream.test', 'direct.test']);
  context.upstreamHosts = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    context.upstreamHosts.push(req.headers.host ?? '');
    serveMcp(req, res).catch(() => res.destroy());
  };
  context.httpsUpstream = await listen(createHttpsServer({ key: tls.key, cert: tls.cert }, handler));
  context.httpUpstream = await listen(createHttpServer(handler));
  context.egress = await startEgressProxy(USER, PASSWORD);
  context.deadPort = await deadPort();

  const servers = manifest(portOf(context.httpsUpstream), portOf(context.httpUpstream));
  const withCredentials = (password: string) => `http://${USER}:${password}@${context.egress.name}`;
  const common = {
    NODE_EXTRA_CA_CERTS: tls.caFile,
    NODE_OPTIONS: `--import=${pathToFileURL(fromRoot('dist/test/fixtures/resolve-test-names.js')).href}`,
    // As chatty as the proxy gets, to show that the proxy's credentials never reach the logs even then.
    LOG_LEVEL: 'debug',
  };
  const started = await Promise.allSettled([
    startProxy(servers, {
      env: {
        ...common,
        // Lower-case wins where both are set: the upper-case one names a proxy nobody runs.
        https_proxy: withCredentials(PROXY_URL_PASSWORD),
        HTTPS_PROXY: `http://127.0.0.1:${context.deadPort}`,
        HTTP_PROXY: withCredentials(PROXY_URL_PASSWORD),
        NO_PROXY: 'example.org, .direct.test',
      },
    }),
    startProxy(servers, {
      env: {
        ...common,
        HTTPS_PROXY: withCredentials(WRONG_PASSWORD),
        HTTP_PROXY: withCredentials(WRONG_PASSWORD),
      },
    }),
    startProxy(servers, {
      env: {
        ...common,
        HTTPS_PROXY: `http://${USER}:${PROXY_URL_PASSWORD}@127.0.0.1:${context.deadPort}`,
        HTTP_PROXY: `socks5://${USER}:${PROXY_URL_PASSWORD}@127.0.0.1:1080`,
      },
    }),
  ]);
  // Should one fail to start, the others are stopped here: `after` knows only those assigned below.
  const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(running.map((p) => p.stop()));
    throw failed.reason;
  }
  [context.proxy, context.refused, context.broken] = running as [RunningProxy, RunningProxy, RunningProxy];
});

test.after(async (context) => {
  // A client that fails to close must not keep the proxies below from being stopped.
  await Promise.all(clients.map((client) => client.close().catch(() => {})));
  await Promise.all([context.proxy, context.refused, context.broken].map((p) => p?.stop()));
  await Promise.all([close(context.httpsUpstream), close(context.httpUpstream), context.egress?.close()]);
  if (context.dir) rmSync(context.dir, { recursive: true, force: true });
});

async function client(proxy: RunningProxy, server: string): Promise<Client> {
  const { client } = await within(connect(proxy.url, server), `a session with ${server}`, BOUND_MS);
  clients.push(client);
  return client;
}

/** Calls `where` and returns its text: the Host the MCP server was asked at. */
async function where(client: Client): Promise<string> {
  const result = await client.callTool({ name: 'where' }, undefined, { timeout: BOUND_MS });
  return (result.content as { text: string }[])[0]!.text;
}

/** The JSON-RPC error a raw initialize gets. */
async function initializeError(proxy: RunningProxy, server: string) {
  const answer = async () => {
    const response = await postInitialize(`${proxy.url}/servers/${server}/mcp`);
    const body = (await response.json()) as { id: unknown; error?: { code: number; message: string } };
    return {
      status: response.status,
      id: body.id,
      code: body.error?.code,
      message: body.error?.message ?? '',
    };
  };
  return within(answer(), `the answer from ${server}`, BOUND_MS);
}

const tunnelsTo = (egress: EgressProxy, authority: string) =>
  egress.tunnels.filter((t) => t === authority).length;

test('an https server is reached through a CONNECT tunnel, TLS to the server inside it', async (context) => {
  const { proxy, egress, httpsUpstream } = context;
  const authority = `upstream.test:${portOf(httpsUpstream)}`;
  const session = await client(proxy, 'tunnelled');
  assert.is(await where(session), authority);
  assert.ok(tunnelsTo(egress, authority) > 0, 'the egress proxy opened a tunnel to upstream.test');
  // The lower-case https_proxy won: HTTPS_PROXY names a port nobody listens on.
  assert.ok(egress.authorizations.length > 0);
  for (const authorization of egress.authorizations) assert.is(authorization, `Basic ${BASIC}`);
});

test('sequential calls reuse one tunnel (keep-alive)', async ({ proxy, egress, httpsUpstream }) => {
  const authority = `upstream.test:${portOf(httpsUpstream)}`;
  const session = await client(proxy, 'tunnelled');
  await where(session);
  const before = tunnelsTo(egress, authority);
  assert.ok(before > 0, 'the session went through a tunnel');
  for (let i = 0; i < 5; i++) assert.is(await where(session), authority);
  assert.is(tunnelsTo(egress, authority), before, 'no new tunnel for sequential calls');
});

test('a server NO_PROXY names is reached directly', async ({
  proxy,
  egress,
  httpsUpstream,
  upstreamHosts,
}) => {
  const authority = `direct.test:${portOf(httpsUpstream)}`;
  assert.is(await where(await client(proxy, 'direct')), authority);
  assert.ok(upstreamHosts.includes(authority), 'the MCP server was asked at direct.test');
  assert.is(tunnelsTo(egress, authority), 0, 'no tunnel to direct.test');
});

test('a loopback server is reached directly, though no NO_PROXY entry names it', async (context) => {
  const { proxy, egress, httpsUpstream } = context;
  const authority = `127.0.0.1:${portOf(httpsUpstream)}`;
  assert.is(await where(await client(proxy, 'loopback')), authority);
  assert.is(tunnelsTo(egress, authority), 0);
});

test('an http server is sent absolute-form requests through the proxy, with credentials', async (context) => {
  const { proxy, egress, httpUpstream } = context;
  const url = `http://upstream.test:${portOf(httpUpstream)}/mcp`;
  const before = egress.authorizations.length;
  assert.is(await where(await client(proxy, 'forwarded')), `upstream.test:${portOf(httpUpstream)}`);
  assert.ok(egress.forwarded.includes(url), 'the egress proxy passed the request on');
  assert.ok(egress.authorizations.length > before);
  for (const authorization of egress.authorizations.slice(before)) assert.is(authorization, `Basic ${BASIC}`);
});

test('each proxied server says once at start which proxy it uses, and no other server does', async ({
  proxy,
  egress,
}) => {
  const lines = proxy
    .stderr()
    .split('\n')
    .filter((line) => line.includes('"event":"upstream-egress-proxy"'))
    .map((line) => JSON.parse(line) as { server: string; proxy: string; variable: string });
  assert.equal(
    lines
      .map(({ server, proxy, variable }) => ({ server, proxy, variable }))
      .sort((a, b) => a.server.localeCompare(b.server)),
    [
      { server: 'forwarded', proxy: egress.name, variable: 'HTTP_PROXY' },
      { server: 'tunnelled', proxy: egress.name, variable: 'https_proxy' },
    ],
  );
});

test('refused credentials (407) are a 502 naming the proxy, for a tunnel and a forwarded request', async ({
  refused,
  egress,
  httpsUpstream,
}) => {
  const tunnel = await initializeError(refused, 'tunnelled');
  assert.equal([tunnel.status, tunnel.id, tunnel.code], [502, 1, -32000]);
  assert.is(
    tunnel.message,
    `upstream tunnelled unreachable: proxy ${egress.name} refused a tunnel to ` +
      `upstream.test:${portOf(httpsUpstream)}: 407 Proxy Authentication Required`,
  );
  const forwarded = await initializeError(refused, 'forwarded');
  assert.equal([forwarded.status, forwarded.id, forwarded.code], [502, 1, -32000]);
  assert.is(
    forwarded.message,
    `upstream forwarded unreachable: proxy ${egress.name} refused the request: ` +
      '407 Proxy Authentication Required',
  );
});

test('a proxy that cannot be reached is a 502 naming it', async ({ broken, deadPort }) => {
  const answer = await initializeError(broken, 'tunnelled');
  assert.equal([answer.status, answer.id, answer.code], [502, 1, -32000]);
  assert.match(answer.message, `upstream tunnelled unreachable: proxy 127.0.0.1:${deadPort} unreachable: `);
  assert.match(answer.message, 'ECONNREFUSED');
});

test('a proxy URL that cannot be used is a 503, and the server is not called around it', async ({
  broken,
  upstreamHosts,
}) => {
  const before = upstreamHosts.length;
  const answer = await initializeError(broken, 'forwarded');
  assert.equal([answer.status, answer.id, answer.code], [503, 1, -32000]);
  assert.is(
    answer.message,
    'upstream forwarded not called: HTTP_PROXY is a socks5: URL; only http:// proxies are supported',
  );
  assert.is(upstreamHosts.length, before);
  assert.match(broken.stderr(), '"event":"upstream-egress-proxy-unusable"');
});

test('the proxy’s credentials never reach the logs', async ({ proxy, refused, broken }) => {
  const wrong = Buffer.from(`${USER}:${WRONG_PASSWORD}`).toString('base64');
  for (const running of [proxy, refused, broken]) {
    const log = running.stderr();
    assert.ok(log.length > 0);
    for (const secret of [PASSWORD, PROXY_URL_PASSWORD, BASIC, WRONG_PASSWORD, wrong]) {
      assert.not.match(log, secret);
    }
  }
});

test('stopping a server abandons a tunnel being set up, and answers the request waiting for it', async () => {
  // A proxy that takes connections and reads CONNECT, but never answers it.
  const sockets = new Set<Socket>();
  let connectsRead = 0;
  const silent = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => (connectsRead += 1));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  let front: HttpServer | undefined;
  const upstream = createRemoteUpstream(
    {
      kind: 'remote',
      name: 'stalled',
      url: 'https://upstream.test/mcp',
      headers: {},
      origin: 'servers',
      useWorkloadIdentity: false,
      idleTimeoutMs: 60_000,
      timeoutMs: 60_000,
      drainTimeoutMs: 1_000,
      disabled: false,
    },
    { env: { HTTPS_PROXY: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` } },
  );
  try {
    await upstream.start();
    front = await listen(createHttpServer((req, res) => void upstream.handle(req, res)));
    const answer = postInitialize(`http://127.0.0.1:${portOf(front)}/`);
    await waitFor(() => connectsRead > 0, BOUND_MS, 'the CONNECT to reach the proxy');
    await upstream.stop();
    // Well before the 30 s limit on setting up a connection through the proxy.
    const response = await within(answer, 'the answer once stopped', BOUND_MS);
    assert.is(response.status, 503);
    assert.equal(await response.json(), {
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32000, message: 'upstream stalled is stopped' },
    });
  } finally {
    // Also where the test failed before stopping it (a second stop does nothing).
    await upstream.stop();
    for (const socket of sockets) socket.destroy();
    await Promise.all([close(front), new Promise((resolve) => silent.close(resolve))]);
  }
});

test.run();
