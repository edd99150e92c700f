import { writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { connect, fixtureCommand, startProxy, waitFor, type RunningProxy } from '../support/proxy.js';

// The operations endpoints of the real proxy process: /readyz, /metrics, request ids and the access log.

const echo = fixtureCommand('echo');
const server = (name: string, extra = '') =>
  `  ${name}:\n    command: ${JSON.stringify(echo.command)}\n    args: ${JSON.stringify(echo.args)}\n${extra}`;
const broken = '  broken:\n    command: /nonexistent\n';
const lazyBroken = '  lazy-broken:\n    command: /nonexistent\n    startup: lazy\n';
const manifestOf = (...servers: string[]) => `servers:\n${servers.join('')}`;

interface Readiness {
  status: string;
  servers?: { name: string; state: string; lastError?: string }[];
}

const test = suite<{ proxy: RunningProxy }>('ops', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(
    manifestOf(server('echo'), server('lazy', '    startup: lazy\n'), broken, lazyBroken),
  );
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const readyz = async (proxy: RunningProxy) => {
  const response = await fetch(`${proxy.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as Readiness };
};

const scrape = async (proxy: RunningProxy) =>
  (await fetch(`${proxy.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();

/** The value of one series in a scrape, or undefined when it is absent. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

const postMcp = (proxy: RunningProxy, path: string, headers: Record<string, string> = {}) =>
  fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    signal: AbortSignal.timeout(10_000),
  });

test('/readyz answers 503 naming an eager server whose command fails, with its state and last error', async ({
  proxy,
}) => {
  const { status, body } = await readyz(proxy);
  assert.is(status, 503);
  assert.is(body.status, 'not ready');
  assert.equal(
    body.servers!.map((s) => s.name),
    ['broken'],
    'the ready eager server and the lazy one are not named',
  );
  assert.ok(['starting', 'restarting', 'failed'].includes(body.servers![0]!.state));
  assert.is(body.servers![0]!.lastError, undefined, 'reasons stay in /servers, not on the open probe');
  const listing = (await (
    await fetch(`${proxy.url}/servers/broken`, { signal: AbortSignal.timeout(10_000) })
  ).json()) as { lastError?: string };
  assert.match(listing.lastError ?? '', 'nonexistent');
});

test('a lazy server whose command cannot run is listed as failed before its first use, with why', async ({
  proxy,
}) => {
  const listing = (await (
    await fetch(`${proxy.url}/servers/lazy-broken`, { signal: AbortSignal.timeout(10_000) })
  ).json()) as {
    state: string;
    lastError?: string;
  };
  assert.is(listing.state, 'failed');
  assert.match(listing.lastError ?? '', 'nonexistent');
});

test('/metrics counts MCP requests by server, method and final status, and times them', async ({ proxy }) => {
  const { client } = await connect(proxy.url, 'echo');
  try {
    for (const word of ['a', 'b', 'c']) await client.callTool({ name: 'echo', arguments: { text: word } });
    const text = await scrape(proxy);
    // initialize and three calls answer 200; the initialized notification answers 202.
    const ok = sample(text, 'mcp_proxy_requests_total{server="echo",method="POST",status="200"}') ?? 0;
    assert.ok(ok >= 4, `POST 200 counted ${ok} times`);
    assert.ok(sample(text, 'mcp_proxy_requests_total{server="echo",method="POST",status="202"}')! >= 1);
    const timed = sample(text, 'mcp_proxy_request_duration_seconds_count{server="echo",method="POST"}') ?? 0;
    assert.ok(timed >= 5, `${timed} POSTs timed`);
    assert.ok(sample(text, 'mcp_proxy_sessions{server="echo"}')! >= 1, 'the open session is seen');
    assert.is(sample(text, 'mcp_proxy_child_restarts{server="echo"}'), 0);
    assert.match(text, 'process_cpu_seconds_total');
  } finally {
    await client.close();
  }
});

test('a request to a name no server has is counted under "(unknown)", never under that name', async ({
  proxy,
}) => {
  const name = `no-such-server-${Date.now()}`;
  const before = sample(
    await scrape(proxy),
    'mcp_proxy_requests_total{server="(unknown)",method="POST",status="404"}',
  );
  for (let i = 0; i < 3; i++) assert.is((await postMcp(proxy, `/servers/${name}-${i}/mcp`)).status, 404);
  const text = await scrape(proxy);
  assert.is(
    sample(text, 'mcp_proxy_requests_total{server="(unknown)",method="POST",status="404"}'),
    (before ?? 0) + 3,
  );
  assert.not.match(text, name);
});

/** POSTs an initialize to a request target written exactly as given (fetch would normalise it). */
const initializeAt = (proxy: RunningProxy, target: string) =>
  new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: new URL(proxy.url).port,
        method: 'POST',
        path: target,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        // A proxy that never answers fails the test instead of hanging the suite: the abort destroys the
        // request, whose error rejects.
        signal: AbortSignal.timeout(10_000),
      },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      },
    );
    req.on('error', reject);
    req.end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    );
  });

test('by default an idle client connection is kept 72 s, longer than load balancers keep theirs (decision 0033)', async ({
  proxy,
}) => {
  // Node names the timeout in every kept-alive answer, so that clients (undici) stop reusing before it.
  const { headers } = await initializeAt(proxy, '/servers/echo/mcp');
  assert.is(headers['keep-alive'], 'timeout=72');
});

test("an MCP endpoint is found however its path is spelt, as Koa's router found it", async ({ proxy }) => {
  // Served ahead of Koa (decision 0024): the spellings its router matched, and those it did not.
  const origin = proxy.url.replace('localhost', '127.0.0.1');
  const found = [
    '/servers/echo/mcp/',
    '/SERVERS/echo/MCP',
    '/servers/%65cho/mcp?x=1',
    '/servers/echo/mcp#fragment',
    // The absolute form a client sends to a forward proxy; HTTP/1.1 servers must accept it.
    `${origin}/servers/echo/mcp`,
  ];
  for (const target of found) {
    const answer = await initializeAt(proxy, target);
    assert.is(answer.status, 200, target);
    assert.ok(answer.headers['mcp-session-id'], target);
  }
  // Dot segments are not resolved, in either form; nor is anything below the endpoint served.
  for (const target of [
    '/servers/../servers/echo/mcp',
    `${origin}/servers/../servers/echo/mcp`,
    '/servers/echo/mcp/extra',
  ]) {
    assert.is((await initializeAt(proxy, target)).status, 404, target);
  }
});

test('a refusal of the gateway is JSON with its length, as Koa answered it', async ({ proxy }) => {
  const answer = await initializeAt(proxy, '/servers/nope/mcp');
  assert.is(answer.status, 404);
  assert.is(answer.headers['content-type'], 'application/json; charset=utf-8');
  assert.ok(Number(answer.headers['content-length']) > 0, 'content-length');
  assert.is(answer.headers['transfer-encoding'], undefined);
  assert.ok(answer.headers['x-request-id'], 'x-request-id');
});

test('X-Request-Id is echoed when it is a safe token, and replaced when it is not', async ({ proxy }) => {
  const kept = await fetch(`${proxy.url}/healthz`, {
    headers: { 'x-request-id': 'trace-42.a_b' },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(kept.headers.get('x-request-id'), 'trace-42.a_b');

  for (const bad of ['has spaces', 'x'.repeat(129), '<script>', 'a/b']) {
    const replaced = await fetch(`${proxy.url}/healthz`, {
      headers: { 'x-request-id': bad },
      signal: AbortSignal.timeout(10_000),
    });
    const id = replaced.headers.get('x-request-id') ?? '';
    assert.is.not(id, bad);
    assert.match(id, /^[0-9a-f-]{36}$/, `a fresh id replaces ${JSON.stringify(bad.slice(0, 20))}`);
  }

  // Raw MCP answers and 404s carry it too.
  const mcp = await postMcp(proxy, '/servers/echo/mcp', { 'x-request-id': 'mcp-call-1' });
  assert.is(mcp.headers.get('x-request-id'), 'mcp-call-1');
  await mcp.body?.cancel();
  const missing = await postMcp(proxy, '/servers/nope/mcp');
  assert.match(missing.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('each finished request logs one info line with its id, never its query, headers or body', async ({
  proxy,
}) => {
  const response = await postMcp(proxy, '/servers/echo/mcp?token=query-secret', {
    'x-request-id': 'log-line-check',
    authorization: 'Bearer header-secret',
  });
  await response.body?.cancel();
  const line = () =>
    proxy
      .stderr()
      .split('\n')
      .find((l) => l.includes('"requestId":"log-line-check"'));
  await waitFor(() => line() !== undefined, 2000, 'the access log line');
  const { time, ms, ...entry } = JSON.parse(line()!);
  assert.equal(entry, {
    level: 'info',
    event: 'request',
    requestId: 'log-line-check',
    method: 'POST',
    path: '/servers/echo/mcp',
    server: 'echo',
    status: response.status,
  });
  assert.type(time, 'string');
  assert.type(ms, 'number');
  assert.is(
    proxy
      .stderr()
      .split('\n')
      .filter((l) => l.includes('log-line-check')).length,
    1,
  );
  assert.not.match(proxy.stderr(), 'query-secret');
  assert.not.match(proxy.stderr(), 'header-secret');
});

test('a reload that removes the failing server makes the proxy ready and counts as applied', async ({
  proxy,
}) => {
  const applied = 'mcp_proxy_reloads_total{result="applied"}';
  assert.is(sample(await scrape(proxy), applied), 0);
  writeFileSync(proxy.manifestPath, manifestOf(server('echo'), server('lazy', '    startup: lazy\n')));
  await waitFor(async () => (await readyz(proxy)).status === 200, 5000, '/readyz to answer 200');
  assert.equal((await readyz(proxy)).body, { status: 'ready' });
  await waitFor(async () => sample(await scrape(proxy), applied) === 1, 2000, 'the reload to be counted');
  const listing = (await (
    await fetch(`${proxy.url}/servers`, { signal: AbortSignal.timeout(10_000) })
  ).json()) as {
    servers: { name: string; pids: number[] }[];
  };
  assert.equal(
    listing.servers.find((s) => s.name === 'lazy')!.pids,
    [],
    'ready without the lazy server ever starting',
  );
});

test.run();
