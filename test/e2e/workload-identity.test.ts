import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { makeTestCertificates } from '../support/identity-tls.js';
import {
  startTokenEndpoint,
  type TokenEndpoint,
  type TokenRequest,
} from '../support/identity-token-endpoint.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/identity-upstream.js';
import { connect, fixtureCommand, startProxy, waitFor, type RunningProxy } from '../support/proxy.js';

/** Upper bound on every single wait here; each should be over within milliseconds. */
const BOUND_MS = 10_000;
const TENANT = 'test-tenant';
const CLIENT_ID = '00000000-0000-0000-0000-00000000c1d0';
const ASSERTION = `federated-assertion-${randomUUID()}`;
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** MSAL treats a token as due this long before it expires (its default token renewal offset). */
const RENEWAL_OFFSET_S = 300;
/** A lifetime that puts a fresh token 2 s from its renewal window, so the test sees it renewed. */
const SHORT_LIFETIME_S = RENEWAL_OFFSET_S + 2;

const echo = fixtureCommand('echo');
const list = (xs: string[]) => JSON.stringify(xs);

interface Context {
  dir: string;
  endpoint: TokenEndpoint;
  upstream: RecordingUpstream;
  proxy: RunningProxy;
  /** Tokens the endpoint issued, by scope, in order. */
  issued: Map<string, string[]>;
  /** The proxy's workload-identity variables. */
  identityEnv: Record<string, string>;
  /** While set, the endpoint answers 503 for the scopes that start with `api://flaky`. */
  flakyDown: boolean;
}

const test = suite<Context>('workload identity', {} as Context);
const clients: Client[] = [];
const others: RunningProxy[] = [];

/** The token endpoint's behaviour per scope: long-lived, short-lived, refused. */
function answer(context: Context) {
  return (request: TokenRequest) => {
    const scope = request.scope ?? '';
    if (scope.startsWith('api://denied/')) {
      return {
        status: 400,
        body: {
          error: 'invalid_client',
          error_description: `AADSTS700016: Application with identifier '${CLIENT_ID}' was not found in the directory.\r\nTrace ID: 1`,
          error_codes: [700016],
        },
      };
    }
    if (scope.startsWith('api://flaky') && context.flakyDown) {
      return {
        status: 503,
        body: { error: 'temporarily_unavailable', error_description: 'AADSTS90000: down for a while' },
      };
    }
    const token = `access-${randomUUID()}`;
    context.issued.set(scope, [...(context.issued.get(scope) ?? []), token]);
    // An upstream that expects another audience: it refuses every token issued for this scope.
    if (scope.startsWith('api://refusing/')) context.upstream.refuse(`Bearer ${token}`);
    const short = scope.startsWith('api://short/') || scope.startsWith('api://flaky-short/');
    const lifetime = short ? SHORT_LIFETIME_S : 3600;
    return { status: 200, body: { token_type: 'Bearer', expires_in: lifetime, access_token: token } };
  };
}

function remote(name: string, upstream: string, extra = ''): string {
  return `  ${name}:\n    url: ${upstream}/${name}\n${extra}`;
}

test.before(async (context) => {
  context.dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-identity-'));
  context.issued = new Map();
  const tls = makeTestCertificates(context.dir);
  context.endpoint = await startTokenEndpoint(tls, answer(context));
  context.upstream = await startRecordingUpstream();
  const tokenFile = join(context.dir, 'federated-token');
  writeFileSync(tokenFile, `${ASSERTION}\n`);
  context.identityEnv = {
    AZURE_CLIENT_ID: CLIENT_ID,
    AZURE_TENANT_ID: TENANT,
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    AZURE_AUTHORITY_HOST: context.endpoint.url,
  };
  const up = context.upstream.url;
  const manifest = [
    'servers:',
    remote(
      'api',
      up,
      // The configured Authorization must lose to the identity; the other configured header still applies.
      '    useWorkloadIdentity: true\n    scope: api://test/.default\n' +
        '    headers: { Authorization: "Bearer configured", X-Api-Key: configured-key }\n',
    ),
    remote('short', up, '    useWorkloadIdentity: true\n    scope: api://short/.default\n'),
    remote('revoked', up, '    useWorkloadIdentity: true\n    scope: api://revoked/.default\n'),
    remote('refusing', up, '    useWorkloadIdentity: true\n    scope: api://refusing/.default\n'),
    remote('denied', up, '    useWorkloadIdentity: true\n    scope: api://denied/.default\n'),
    remote('plain', up, '    headers: { Authorization: "Bearer configured" }\n'),
    remote('flaky', up, '    useWorkloadIdentity: true\n    scope: api://flaky/.default\n    timeout: 2s\n'),
    remote('flaky-short', up, '    useWorkloadIdentity: true\n    scope: api://flaky-short/.default\n'),
    `  with-identity:\n    command: ${JSON.stringify(echo.command)}\n    args: ${list(echo.args)}\n    useWorkloadIdentity: true`,
    `  without-identity:\n    command: ${JSON.stringify(echo.command)}\n    args: ${list(echo.args)}`,
    '',
  ].join('\n');
  context.proxy = await startProxy(manifest, {
    env: {
      ...context.identityEnv,
      NODE_EXTRA_CA_CERTS: tls.caFile,
      // As chatty as the proxy and the Azure SDK get, to show that no token reaches the logs even then.
      LOG_LEVEL: 'debug',
      AZURE_LOG_LEVEL: 'verbose',
    },
  });
});

test.after(async ({ dir, endpoint, upstream, proxy }) => {
  // A client that fails to close must not keep the proxies below from being stopped.
  await Promise.all(clients.map((client) => client.close().catch(() => {})));
  await Promise.all([proxy, ...others].map((p) => p?.stop()));
  await Promise.all([endpoint?.close(), upstream?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: { id?: unknown; result?: unknown; error?: { code: number; message: string } };
}

let nextId = 1;

/** POSTs a JSON-RPC ping to one server of the proxy, as a client with its own Authorization header. */
async function ping(proxy: RunningProxy, server: string): Promise<Answer & { id: number }> {
  const id = nextId++;
  const response = await fetch(`${proxy.url}/servers/${server}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: 'Bearer client-own-token',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }),
    signal: AbortSignal.timeout(BOUND_MS),
  });
  return { id, status: response.status, body: (await response.json()) as Answer['body'] };
}

const tokenRequestsFor = (endpoint: TokenEndpoint, scope: string) =>
  endpoint.requests.filter((r) => r.scope === scope);

test('requests carry the token the endpoint issued, never the client’s own Authorization', async (context) => {
  const { proxy, upstream, endpoint, issued } = context;
  // Together, on a cold cache: the library alone would fetch one token per request.
  const answers = await Promise.all(Array.from({ length: 5 }, () => ping(proxy, 'api')));
  for (const a of answers) assert.equal([a.status, a.body.id, a.body.result], [200, a.id, {}]);

  const [token] = issued.get('api://test/.default') ?? [];
  assert.ok(token, 'a token was issued for the scope');
  const seen = upstream.on('/api');
  assert.is(seen.length, 5);
  for (const { headers } of seen) {
    assert.is(headers.authorization, `Bearer ${token}`);
    assert.is(headers['x-api-key'], 'configured-key');
  }
  // A server without the identity still gets its configured header, and never the client's.
  await ping(proxy, 'plain');
  assert.is(upstream.on('/plain')[0]?.headers.authorization, 'Bearer configured');

  const requests = tokenRequestsFor(endpoint, 'api://test/.default');
  assert.is(requests.length, 1, 'concurrent requests share one token fetch');
  assert.equal(requests[0], {
    tenant: TENANT,
    grantType: 'client_credentials',
    clientId: CLIENT_ID,
    scope: 'api://test/.default',
    assertion: ASSERTION,
    assertionType: JWT_BEARER,
  });
  assert.equal(endpoint.unexpected, [], 'MSAL asks for nothing but the OpenID metadata and tokens');
});

test('later requests reuse the cached token', async ({ proxy, upstream, endpoint, issued }) => {
  for (let i = 0; i < 5; i++) assert.is((await ping(proxy, 'api')).status, 200);
  assert.is(tokenRequestsFor(endpoint, 'api://test/.default').length, 1);
  assert.is(
    upstream.on('/api').at(-1)?.headers.authorization,
    `Bearer ${issued.get('api://test/.default')![0]}`,
  );
});

test('a token the upstream refuses (401) is dropped: the next request fetches a new one and sends it', async ({
  proxy,
  upstream,
  endpoint,
  issued,
}) => {
  const scope = 'api://revoked/.default';
  const lastSeen = () => upstream.on('/revoked').at(-1)?.headers.authorization;
  assert.is((await ping(proxy, 'revoked')).status, 200);
  const first = issued.get(scope)![0]!;
  assert.is(lastSeen(), `Bearer ${first}`);

  // Revoked upstream-side, long before it expires: the request that finds out gets a 502 (decision 0041),
  // not a retry.
  upstream.refuse(`Bearer ${first}`);
  const refused = await ping(proxy, 'revoked');
  assert.is(refused.status, 502);
  assert.equal(refused.body, {
    jsonrpc: '2.0',
    id: refused.id,
    error: {
      code: -32000,
      message:
        "upstream revoked refused the proxy's credentials for it (401): check its headers or workload identity",
    },
  });
  assert.is(tokenRequestsFor(endpoint, scope).length, 1);

  assert.is((await ping(proxy, 'revoked')).status, 200);
  assert.is(tokenRequestsFor(endpoint, scope).length, 2, 'the next request fetched a new token');
  const second = issued.get(scope)![1]!;
  assert.is(lastSeen(), `Bearer ${second}`);
  assert.is((await ping(proxy, 'revoked')).status, 200);
  assert.is(tokenRequestsFor(endpoint, scope).length, 2, 'and the new one is cached');
  assert.match(proxy.stderr(), '"event":"workload-identity-token-refused"');
});

test('an upstream that refuses every token does not send each request to the token endpoint', async ({
  proxy,
  upstream,
  endpoint,
  issued,
}) => {
  // Its own scope, whose every token the upstream refuses (see `answer`): the first refusal replaces the
  // token, and that replacement starts the 10 s in which no refusal replaces it again.
  const scope = 'api://refusing/.default';
  assert.is((await ping(proxy, 'refusing')).status, 502);
  assert.is(tokenRequestsFor(endpoint, scope).length, 1);
  assert.is((await ping(proxy, 'refusing')).status, 502);
  assert.is(tokenRequestsFor(endpoint, scope).length, 2, 'the first refusal fetched a new token');
  const current = issued.get(scope)!.at(-1)!;
  for (let i = 0; i < 3; i++) assert.is((await ping(proxy, 'refusing')).status, 502);
  assert.is(tokenRequestsFor(endpoint, scope).length, 2, 'no new token within 10 s of the last refusal');
  assert.is(upstream.on('/refusing').at(-1)?.headers.authorization, `Bearer ${current}`);
});

test('a token is renewed in the library’s window before it expires, and the new one used', async ({
  proxy,
  upstream,
  endpoint,
  issued,
}) => {
  const scope = 'api://short/.default';
  const lastSeen = () => upstream.on('/short').at(-1)?.headers.authorization;
  const start = Date.now();
  await ping(proxy, 'short');
  const first = issued.get(scope)![0]!;
  assert.is(lastSeen(), `Bearer ${first}`);
  await ping(proxy, 'short');
  assert.is(tokenRequestsFor(endpoint, scope).length, 1, 'still cached right after');

  // The first token is valid for 302 s; MSAL renews it once less than 300 s remain, so about 2 s from now.
  await waitFor(
    async () => {
      await ping(proxy, 'short');
      return lastSeen() !== `Bearer ${first}`;
    },
    BOUND_MS,
    'a renewed token to reach the upstream',
  );
  const elapsed = Date.now() - start;
  const second = issued.get(scope)![1];
  assert.is(lastSeen(), `Bearer ${second}`);
  assert.is(tokenRequestsFor(endpoint, scope).length, 2, 'one fetch for the renewal, none in between');
  // Not before the window opens (about 2 s after the first fetch). When after that it is seen depends on
  // how fast the pings go; that it comes long before the first token expires, waitFor's bound ensures.
  assert.ok(elapsed >= 1000, `renewed after ${elapsed} ms`);
});

test('a token endpoint error answers 503 naming server and reason; the upstream is not called', async ({
  proxy,
  upstream,
}) => {
  const { id, status, body } = await ping(proxy, 'denied');
  assert.is(status, 503);
  assert.is(body.id, id);
  assert.is(body.error?.code, -32000);
  const message = body.error!.message;
  assert.match(message, 'upstream denied not called');
  assert.match(message, 'api://denied/.default');
  assert.match(message, 'AADSTS700016');
  assert.not.match(message, ASSERTION);
  assert.is(upstream.on('/denied').length, 0);
});

test('a token endpoint that was down serves again once it recovers; a slow one is bounded by timeout', async (context) => {
  // MSAL kept a scope that met a 5xx throttled for 60 s (up to an hour with a Retry-After) whatever the
  // endpoint did meanwhile; and a request waited for every retry of the fetch, whatever its timeout.
  context.flakyDown = true;
  try {
    const { status, body } = await ping(context.proxy, 'flaky');
    assert.is(status, 503);
    // Answered by its 2 s timeout, not after every retry of the fetch against a 503 (over 5 s): how long
    // that took on a slow machine is no test's business, which of the two answered is.
    assert.match(body.error!.message, 'upstream flaky not called: no workload identity token within 2000 ms');
  } finally {
    context.flakyDown = false;
  }
  await waitFor(
    async () => (await ping(context.proxy, 'flaky')).status === 200,
    20_000,
    'flaky to serve again',
  );
});

test('a token whose renewal fails serves on while it is still good', async (context) => {
  const { proxy, upstream, issued } = context;
  const scope = 'api://flaky-short/.default';
  assert.is((await ping(proxy, 'flaky-short')).status, 200);
  const first = issued.get(scope)![0]!;
  context.flakyDown = true;
  try {
    // The token is due for renewal about 2 s after it was issued, and valid for 300 s more.
    await waitFor(
      async () => {
        assert.is((await ping(proxy, 'flaky-short')).status, 200, 'every call is served meanwhile');
        return proxy.stderr().includes('"event":"workload-identity-renewal-failed"');
      },
      BOUND_MS * 3,
      'a renewal to fail',
    );
  } finally {
    context.flakyDown = false;
  }
  assert.is(upstream.on('/flaky-short').at(-1)?.headers.authorization, `Bearer ${first}`);
});

test('a token endpoint that cannot be reached is named in the 503', async ({ upstream, identityEnv }) => {
  // MSAL says only "network_error: See https://aka.ms/…" or "endpoints_resolution_error: See …".
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const authority = `https://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
  const proxy = await startProxy(
    `servers:\n${remote('unreachable', upstream.url, '    useWorkloadIdentity: true\n    scope: api://test/.default\n')}`,
    { env: { ...identityEnv, AZURE_AUTHORITY_HOST: authority } },
  );
  others.push(proxy);
  const { status, body } = await ping(proxy, 'unreachable');
  assert.is(status, 503);
  assert.match(body.error!.message, `the token endpoint at ${authority} could not be reached`);
});

test('without the identity variables a request answers 503 naming them; the upstream is not called; a child with the flag is warned of', async ({
  upstream,
}) => {
  const proxy = await startProxy(
    `servers:\n${remote('unconfigured', upstream.url, '    useWorkloadIdentity: true\n    scope: api://test/.default\n')}` +
      `  child:\n    command: ${JSON.stringify(echo.command)}\n    args: ${list(echo.args)}\n    useWorkloadIdentity: true\n`,
  );
  others.push(proxy);
  const { status, body } = await ping(proxy, 'unconfigured');
  assert.is(status, 503);
  assert.match(
    body.error!.message,
    'AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE not set in the proxy',
  );
  assert.is(upstream.on('/unconfigured').length, 0);
  // The child would only fail later, deep in its own sign-in: the proxy says so when it starts it.
  const warning = proxy
    .stderr()
    .split('\n')
    .find((line) => line.includes('"event":"workload-identity-unset"'));
  assert.ok(warning?.includes('"server":"child"'), proxy.stderr());
});

test('a stdio server with useWorkloadIdentity gets the four variables; one without gets none', async ({
  proxy,
  identityEnv,
}) => {
  const whoami = async (server: string): Promise<Record<string, string>> => {
    const { client } = await connect(proxy.url, server);
    clients.push(client);
    const result = await client.callTool({ name: 'whoami', arguments: {} }, undefined, { timeout: BOUND_MS });
    const [content] = result.content as { text: string }[];
    return (JSON.parse(content!.text) as { env: Record<string, string> }).env;
  };
  const withIdentity = await whoami('with-identity');
  for (const [name, value] of Object.entries(identityEnv)) assert.is(withIdentity[name], value, name);
  const withoutIdentity = await whoami('without-identity');
  for (const name of Object.keys(identityEnv)) assert.is(withoutIdentity[name], undefined, name);
});

test('no token or assertion reaches the proxy’s logs, even at their most verbose', ({ proxy, issued }) => {
  const log = proxy.stderr();
  assert.match(log, '"event":"workload-identity-token"');
  for (const token of [...issued.values()].flat()) assert.not.ok(log.includes(token), 'a token in the log');
  assert.not.ok(log.includes(ASSERTION), 'the assertion in the log');
});

test.run();
