import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fixtureCommand, startProxy, waitFor, type RunningProxy } from '../support/proxy.js';

// DNS rebinding against the real proxy process on 127.0.0.1, with no access control: a browser page whose
// name was made to resolve to 127.0.0.1 sends its own name as Host. fetch() may not set Host, so these
// requests are made with node:http, which sends the Host it is given as a browser would.

const echo = fixtureCommand('echo');
const manifestWith = (allowedHosts: string) => `allowedHosts: ${allowedHosts}
servers:
  echo: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }
`;

const test = suite<{ proxy: RunningProxy }>('host check', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifestWith('[mcp.example.com]'));
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'page', version: '1' } },
});

/** One request to the proxy naming `host` in its Host header: its status and body. */
function call(
  proxy: RunningProxy,
  host: string,
  path: string,
  method: 'GET' | 'POST' = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: new URL(proxy.url).port,
        method,
        path,
        headers: {
          host,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        signal: AbortSignal.timeout(10_000),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(method === 'POST' ? INITIALIZE : undefined);
  });
}

test('a foreign Host is 403 on the MCP endpoint and on every operational route', async (ctx) => {
  const port = new URL(ctx.proxy.url).port;
  for (const [path, method] of [
    ['/servers/echo/mcp', 'POST'],
    ['/servers', 'GET'],
    ['/servers/echo', 'GET'],
    ['/metrics', 'GET'],
    ['/readyz', 'GET'],
  ] as const) {
    const r = await call(ctx.proxy, `rebound.example.net:${port}`, path, method);
    assert.is(r.status, 403, `${method} ${path}`);
    assert.match(r.body, /DNS rebinding/, `${method} ${path}`);
    assert.not.match(r.body, /echo/, `${method} ${path} tells nothing of the servers`);
  }
});

test("this machine's names and addresses, and the listed hosts, are answered", async (ctx) => {
  const port = new URL(ctx.proxy.url).port;
  for (const host of [
    `localhost:${port}`,
    `127.0.0.1:${port}`,
    `[::1]:${port}`,
    `app.localhost:${port}`,
    `10.1.2.3:${port}`, // an address is never a rebound name: probes call a pod by its own
    'MCP.Example.com', // names are not case-sensitive; no port is needed
    `mcp.example.com:${port}`,
  ]) {
    const servers = await call(ctx.proxy, host, '/servers');
    assert.is(servers.status, 200, host);
    const initialize = await call(ctx.proxy, host, '/servers/echo/mcp', 'POST');
    assert.is(initialize.status, 200, host);
  }
});

test('allowedHosts is applied on reload', async (ctx) => {
  writeFileSync(ctx.proxy.manifestPath, manifestWith('[other.example.com]'));
  await waitFor(
    async () => (await call(ctx.proxy, 'other.example.com', '/servers')).status === 200,
    10_000,
    'the reload to allow other.example.com',
  );
  assert.is((await call(ctx.proxy, 'mcp.example.com', '/servers')).status, 403);
});

test.run();
