import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  listingOf,
  postInitialize,
  postToSession,
  startProxy,
  waitFor,
  type RunningProxy,
} from '../support/proxy.js';

// The sessions a remote server handed out through the proxy, as its `maxSessions` counts them: a session
// the upstream forgot (it answers 404 for it) frees its place, and so does one unused past `idleTimeout`.

/**
 * A scripted Streamable HTTP upstream: an initialize opens a session (a fresh id); a request on a session
 * it still knows gets a JSON answer, one on a session it was told to forget 404.
 */
interface ScriptedUpstream {
  url: string;
  forget(session: string): void;
  close(): Promise<void>;
}

async function startScriptedUpstream(): Promise<ScriptedUpstream> {
  const forgotten = new Set<string>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const session = req.headers['mcp-session-id'] as string | undefined;
      const message = body === '' ? undefined : (JSON.parse(body) as { id?: number; method?: string });
      if (session !== undefined && forgotten.has(session)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }),
        );
        return;
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      let result: object = {};
      if (session === undefined && message?.method === 'initialize') {
        headers['mcp-session-id'] = randomUUID();
        result = {
          protocolVersion: '2025-11-25',
          capabilities: {},
          serverInfo: { name: 'scripted', version: '1' },
        };
      }
      if (message?.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    forget: (session) => forgotten.add(session),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const manifestOf = (url: string) => `
servers:
  forgetful:
    url: ${url}
    maxSessions: 1
    idleTimeout: 0
  idle:
    url: ${url}
    maxSessions: 1
    idleTimeout: 1s
`;

const test = suite<{ upstream: ScriptedUpstream; proxy: RunningProxy }>(
  'remote session ledger',
  {} as { upstream: ScriptedUpstream; proxy: RunningProxy },
);

test.before(async (ctx) => {
  ctx.upstream = await startScriptedUpstream();
  ctx.proxy = await startProxy(manifestOf(ctx.upstream.url));
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
  await ctx.upstream?.close();
});

async function sessionCount(proxy: RunningProxy, name: string): Promise<number> {
  return (await listingOf(proxy.url, name)).sessions;
}

/** A raw initialize through the proxy: its status and the session id it opened, if any. */
async function initialize(
  endpoint: string,
): Promise<{ status: number; session: string | null; retryAfter: string | null }> {
  const response = await postInitialize(endpoint);
  await response.text();
  return {
    status: response.status,
    session: response.headers.get('mcp-session-id'),
    retryAfter: response.headers.get('retry-after'),
  };
}

const ping = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' });

test('a session the upstream answers 404 for no longer counts: its place is free again', async ({
  upstream,
  proxy,
}) => {
  const endpoint = `${proxy.url}/servers/forgetful/mcp`;
  const first = await initialize(endpoint);
  assert.is(first.status, 200);
  assert.ok(first.session);
  const full = await initialize(endpoint);
  assert.is(full.status, 503);
  assert.is(full.retryAfter, '5');

  // Still known upstream: a request on it keeps it counted.
  const used = await postToSession({ endpoint, session: first.session }, ping);
  assert.is(used.status, 200);
  await used.text();
  assert.is(await sessionCount(proxy, 'forgetful'), 1);

  upstream.forget(first.session);
  const gone = await postToSession({ endpoint, session: first.session }, ping);
  assert.is(gone.status, 404);
  await gone.text();
  assert.is(await sessionCount(proxy, 'forgetful'), 0);
  const next = await initialize(endpoint);
  assert.is(next.status, 200);
});

test('a session unused past idleTimeout no longer counts: its place is free again', async ({ proxy }) => {
  const endpoint = `${proxy.url}/servers/idle/mcp`;
  const first = await initialize(endpoint);
  assert.is(first.status, 200);
  const full = await initialize(endpoint);
  assert.is(full.status, 503);
  await waitFor(
    async () => (await sessionCount(proxy, 'idle')) === 0,
    5_000,
    'the idle session to stop counting',
  );
  const next = await initialize(endpoint);
  assert.is(next.status, 200);
  assert.is.not(next.session, first.session);
});

test.run();
