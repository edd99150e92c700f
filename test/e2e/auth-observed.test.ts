import * as assert from 'uvu/assert';
import { heldAuth, heldKeys, OPS_KEY } from '../support/held-keys.js';
import { fixtureCommand, postInitialize, startProxy, waitFor } from '../support/proxy.js';
import { test } from '../support/uvu.js';

// What access control tells: the caller and the refusal in the access log, an unreachable key set as
// the issuer's failure rather than the token's, and metadata asked for without JWT auth.

const echo = fixtureCommand('echo');
const echoServer = `servers:\n  echo: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }\n`;

interface RequestLine {
  event: string;
  status: number;
  principal?: string;
  denied?: string;
  detail?: string;
}

const requestLines = (stderr: string): RequestLine[] =>
  stderr
    .split('\n')
    .filter((line) => line.includes('"event":"request"'))
    .map((line) => JSON.parse(line) as RequestLine);

test('a key set that cannot be fetched is 503, not 401; the log says who, why and where', async () => {
  // Its server closed: the keys' URL now refuses connections, while its tokens are still well signed.
  const keys = await heldKeys();
  await keys.close();
  const proxy = await startProxy(heldAuth(keys) + echoServer, { env: { OPS_KEY } });
  try {
    const endpoint = `${proxy.url}/servers/echo/mcp`;
    const withToken = await postInitialize(endpoint, { authorization: `Bearer ${await keys.token('mcp')}` });
    assert.is(withToken.status, 503);
    assert.is(withToken.headers.get('retry-after'), '10');
    const { error } = (await withToken.json()) as { error: { message: string } };
    // Where the keys come from may be an internal address: the client is told only that they cannot be had.
    assert.is(error.message, 'Service Unavailable: the token signing keys cannot be fetched');

    const withKey = await postInitialize(endpoint, { 'x-api-key': OPS_KEY });
    assert.is(withKey.status, 200);
    await withKey.body?.cancel();

    await waitFor(() => requestLines(proxy.stderr()).length >= 2, 10_000, 'two access-log lines');
    const [refused, served] = requestLines(proxy.stderr());
    assert.is(refused!.status, 503);
    assert.is(refused!.denied, error.message);
    assert.is(refused!.detail, `${keys.url}: ECONNREFUSED`);
    assert.is(refused!.principal, undefined);
    assert.is(served!.status, 200);
    assert.is(served!.principal, 'key:ops');
    assert.is(served!.denied, undefined);
  } finally {
    await proxy.stop();
  }
});

test('forwarded headers shape the metadata URLs only as a host and a scheme', async () => {
  const keys = await heldKeys();
  const proxy = await startProxy(heldAuth(keys) + echoServer, { env: { OPS_KEY } });
  try {
    const { host } = new URL(proxy.url);
    const challenge = async (headers: Record<string, string>) => {
      const r = await postInitialize(`${proxy.url}/servers/echo/mcp`, headers);
      await r.body?.cancel();
      return r.headers.get('www-authenticate');
    };
    const path = '/.well-known/oauth-protected-resource/servers/echo/mcp';
    assert.is(
      await challenge({ 'x-forwarded-host': 'mcp.example.com:8443', 'x-forwarded-proto': 'https' }),
      `Bearer resource_metadata="https://mcp.example.com:8443${path}"`,
    );
    assert.is(
      await challenge({ 'x-forwarded-host': 'mcp_proxy:8000' }),
      `Bearer resource_metadata="http://mcp_proxy:8000${path}"`,
      'a Compose service name',
    );
    // A quote would end the parameter and let the sender add its own; a path would move the URL.
    for (const forged of ['evil.example/x", error="invalid_token', 'evil.example/x', 'a b']) {
      assert.is(
        await challenge({ 'x-forwarded-host': forged, 'x-forwarded-proto': 'javascript' }),
        `Bearer resource_metadata="http://${host}${path}"`,
        forged,
      );
    }
    const metadata = await fetch(`${proxy.url}${path}`, { signal: AbortSignal.timeout(10_000) });
    assert.is(metadata.headers.get('vary'), 'Host, X-Forwarded-Host, X-Forwarded-Proto');
    await metadata.body?.cancel();
  } finally {
    await proxy.stop();
    await keys.close();
  }
});

test('OAuth metadata without auth.jwt: the same 404 for a server that exists and one that does not', async () => {
  const proxy = await startProxy(echoServer);
  try {
    for (const name of ['echo', 'nowhere']) {
      const r = await fetch(`${proxy.url}/.well-known/oauth-protected-resource/servers/${name}/mcp`, {
        signal: AbortSignal.timeout(10_000),
      });
      assert.is(r.status, 404, name);
      const { error } = (await r.json()) as { error: { message: string } };
      assert.is(error.message, 'no OAuth metadata: auth.jwt is not configured', name);
    }
  } finally {
    await proxy.stop();
  }
});

test.run();
