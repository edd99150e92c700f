import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  connect,
  fixtureCommand,
  postToSession,
  startHttpFixture,
  startProxy,
  type HttpFixture,
  type RunningProxy,
  postInitialize,
} from '../support/proxy.js';

// Access control with real keys and real tokens: a JWKS and an OpenID discovery document served on
// loopback, keys made with jose, the real proxy process, SDK clients.

const echo = fixtureCommand('echo');
const ALPHA_KEY = 'alpha-key-0123456789abcdef';
const ALL_KEY = 'all-key-0123456789abcdef';
const AUDIENCE = 'api://mcp-proxy-test';

interface Context {
  proxy: RunningProxy;
  /** The upstream of the remote server `gamma`. */
  upstream: HttpFixture;
  idp: Server;
  issuer: string;
  signing: CryptoKey;
  other: CryptoKey;
}

const test = suite<Context>('access control', {} as Context);

test.before(async (ctx) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  ctx.signing = privateKey;
  ctx.other = (await generateKeyPair('RS256')).privateKey; // a key the issuer never published
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  ctx.idp = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer: ctx.issuer, jwks_uri: `${ctx.issuer}/keys` }
        : req.url === '/keys'
          ? { keys: [jwk] }
          : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((r) => ctx.idp.listen(0, '127.0.0.1', r));
  ctx.issuer = `http://127.0.0.1:${(ctx.idp.address() as AddressInfo).port}`;
  const allDigest = createHash('sha256').update(ALL_KEY).digest('hex');
  ctx.upstream = await startHttpFixture();
  ctx.proxy = await startProxy(
    `
auth:
  apiKeys:
    - { name: alpha-only, key: "\${ALPHA_KEY}", servers: [alpha] }
    - { name: everything, sha256: ${allDigest}, servers: ["*"] }
  jwt: { issuer: "${ctx.issuer}", audience: ${AUDIENCE} }
allowedOrigins: [https://app.example.com]
servers:
  alpha: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }
  beta:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
    requiredRoles: [beta.user]
  gamma: { url: "${ctx.upstream.url}" }
`,
    { env: { ALPHA_KEY } },
  );
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
  await ctx.upstream?.stop();
  ctx.idp?.closeAllConnections();
  await new Promise((r) => ctx.idp?.close(r));
});

const token = (
  ctx: Context,
  claims: Record<string, unknown> = {},
  options: { key?: CryptoKey; exp?: string | number; aud?: string } = {},
) =>
  new SignJWT({ roles: [], ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(ctx.issuer)
    .setAudience(options.aud ?? AUDIENCE)
    .setSubject(String(claims.sub ?? 'user-1'))
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(options.key ?? ctx.signing);

const initialize = (ctx: Context, server: string, headers: Record<string, string>) =>
  postInitialize(`${ctx.proxy.url}/servers/${server}/mcp`, headers);

const echoes = async (ctx: Context, server: string, headers: Record<string, string>) => {
  const { client } = await connect(ctx.proxy.url, server, undefined, {}, headers);
  try {
    const result = (await client.callTool({ name: 'echo', arguments: { text: 'ok' } })) as {
      content: { text: string }[];
    };
    return result.content[0]!.text === 'ok';
  } finally {
    await client.close();
  }
};

test('no credential: 401 pointing at the protected-resource metadata, which names the issuer', async (ctx) => {
  const r = await initialize(ctx, 'alpha', {});
  assert.is(r.status, 401);
  const metadataUrl = `${ctx.proxy.url}/.well-known/oauth-protected-resource/servers/alpha/mcp`;
  assert.is(r.headers.get('www-authenticate'), `Bearer resource_metadata="${metadataUrl}"`);
  const metadata = (await (
    await fetch(metadataUrl, { signal: AbortSignal.timeout(10_000) })
  ).json()) as Record<string, unknown>;
  assert.is(metadata.resource, `${ctx.proxy.url}/servers/alpha/mcp`);
  assert.equal(metadata.authorization_servers, [ctx.issuer]);
});

test('an API key works on its servers, by either header, and gets 403 elsewhere', async (ctx) => {
  assert.ok(await echoes(ctx, 'alpha', { 'x-api-key': ALPHA_KEY }));
  assert.ok(await echoes(ctx, 'alpha', { authorization: `Bearer ${ALPHA_KEY}` }));
  const r = await initialize(ctx, 'beta', { 'x-api-key': ALPHA_KEY });
  assert.is(r.status, 403);
  assert.match(await r.text(), 'the key \\"alpha-only\\" may not use server beta');
});

test('a key stored only as its SHA-256 works; a wrong key is 401', async (ctx) => {
  assert.ok(await echoes(ctx, 'beta', { 'x-api-key': ALL_KEY }));
  const r = await initialize(ctx, 'alpha', { 'x-api-key': `${ALL_KEY}x` });
  assert.is(r.status, 401);
  assert.match(r.headers.get('www-authenticate')!, 'error="invalid_token"');
});

test('a JWT with the required role works; without it 403; no role needed on an open server', async (ctx) => {
  assert.ok(
    await echoes(ctx, 'beta', { authorization: `Bearer ${await token(ctx, { roles: ['beta.user'] })}` }),
  );
  const r = await initialize(ctx, 'beta', {
    authorization: `Bearer ${await token(ctx, { roles: ['other'] })}`,
  });
  assert.is(r.status, 403);
  assert.match(r.headers.get('www-authenticate')!, 'error="insufficient_scope"');
  assert.ok(await echoes(ctx, 'alpha', { authorization: `Bearer ${await token(ctx)}` }));
});

test('an expired, wrongly signed or wrong-audience token is 401', async (ctx) => {
  const past = Math.floor(Date.now() / 1000) - 3600;
  const cases = [
    await token(ctx, {}, { exp: past }),
    await token(ctx, {}, { key: ctx.other }),
    await token(ctx, {}, { aud: 'api://someone-else' }),
    'not.a.jwt',
  ];
  for (const bad of cases) {
    const r = await initialize(ctx, 'alpha', { authorization: `Bearer ${bad}` });
    assert.is(r.status, 401);
    assert.match(r.headers.get('www-authenticate')!, 'error="invalid_token"');
  }
});

test("another principal's session id is answered 404", async (ctx) => {
  const mine = await connect(ctx.proxy.url, 'alpha', undefined, {}, { 'x-api-key': ALPHA_KEY });
  try {
    const sessionId = mine.transport.sessionId!;
    const r = await fetch(`${ctx.proxy.url}/servers/alpha/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-api-key': ALL_KEY,
        'mcp-session-id': sessionId,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(r.status, 404);
    // The owner still uses it.
    const tools = await mine.client.listTools();
    assert.ok(tools.tools.length > 0);
  } finally {
    await mine.client.close();
  }
});

test('a remote session whose owner the proxy does not know is answered 404, not passed on', async (ctx) => {
  // Opened at the remote server directly, as one the proxy forgot would be (unused past idleTimeout, or
  // opened before a restart): the upstream still holds it, and its id must not give it to anyone.
  const direct = new Client({ name: 'direct', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(ctx.upstream.url));
  await direct.connect(transport);
  try {
    const r = await postToSession(
      { endpoint: `${ctx.proxy.url}/servers/gamma/mcp`, session: transport.sessionId! },
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      { 'x-api-key': ALL_KEY },
    );
    assert.is(r.status, 404);
    await r.text();
    // Its owner, through the proxy, uses a session of its own as ever.
    const mine = await connect(ctx.proxy.url, 'gamma', undefined, {}, { 'x-api-key': ALL_KEY });
    try {
      assert.ok((await mine.client.listTools()).tools.length > 0);
    } finally {
      await mine.client.close();
    }
  } finally {
    await direct.close();
  }
});

test('a foreign Origin is 403; an allowed one passes', async (ctx) => {
  const bad = await initialize(ctx, 'alpha', { 'x-api-key': ALPHA_KEY, origin: 'https://evil.example.com' });
  assert.is(bad.status, 403);
  const good = await initialize(ctx, 'alpha', { 'x-api-key': ALPHA_KEY, origin: 'https://app.example.com' });
  assert.is(good.status, 200);
  await good.text();
});

test('a token without expiry, or naming no subject, is 401', async (ctx) => {
  // No expiry: good for ever once leaked. No subject: every such token would be one principal and share
  // its sessions.
  const signed = (claims: Record<string, unknown>, expires: boolean) => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ctx.issuer)
      .setAudience(AUDIENCE)
      .setIssuedAt();
    return (expires ? jwt.setExpirationTime('5m') : jwt).sign(ctx.signing);
  };
  for (const [token, why] of [
    [await signed({ sub: 'user-1' }, false), "the token's exp claim is not accepted"],
    [await signed({}, true), 'the token names no subject'],
  ] as const) {
    const r = await initialize(ctx, 'alpha', { authorization: `Bearer ${token}` });
    assert.is(r.status, 401);
    assert.match(await r.text(), why);
  }
  // A subject in oid alone (Entra's object id) still names one.
  assert.ok(await echoes(ctx, 'alpha', { authorization: `Bearer ${await signed({ oid: 'o-1' }, true)}` }));
});

test('/servers and /servers/:name show a caller only the servers it may use', async (ctx) => {
  const listed = async (key: string) =>
    (
      (await (
        await fetch(`${ctx.proxy.url}/servers`, {
          headers: { 'x-api-key': key },
          signal: AbortSignal.timeout(10_000),
        })
      ).json()) as {
        servers: { name: string }[];
      }
    ).servers.map((s) => s.name);
  assert.equal(await listed(ALPHA_KEY), ['alpha']);
  assert.equal(await listed(ALL_KEY), ['alpha', 'beta', 'gamma']);
  const beta = await fetch(`${ctx.proxy.url}/servers/beta`, {
    headers: { 'x-api-key': ALPHA_KEY },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(beta.status, 404, 'as if it did not exist');
  await beta.text();
  assert.is(
    (
      await fetch(`${ctx.proxy.url}/servers/beta`, {
        headers: { 'x-api-key': ALL_KEY },
        signal: AbortSignal.timeout(10_000),
      })
    ).status,
    200,
  );
});

test('/servers needs a credential when access control is on, and says which', async (ctx) => {
  assert.is((await fetch(`${ctx.proxy.url}/servers`, { signal: AbortSignal.timeout(10_000) })).status, 401);
  const r = await fetch(`${ctx.proxy.url}/servers`, {
    headers: { 'x-api-key': ALPHA_KEY },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(r.status, 200);
  assert.is(((await r.json()) as { auth: string }).auth, 'api-keys+jwt');
  assert.is(
    (await fetch(`${ctx.proxy.url}/healthz`, { signal: AbortSignal.timeout(10_000) })).status,
    200,
    'probes stay open',
  );
});

test.run();
