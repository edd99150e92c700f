import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/**
 * A JWKS endpoint on 127.0.0.1 that holds every request until the test releases it: a request whose JWT
 * the proxy is checking then waits in access control for as long as the test likes.
 */
export interface HeldKeys {
  /** The endpoint, for `auth.jwt.jwksUri`. */
  url: string;
  /** The issuer every token of `token` names. */
  issuer: string;
  /** Resolves once the proxy has asked for the keys. */
  asked: Promise<void>;
  /** Answers the requests held, and every later one at once. */
  release(): void;
  /** A token for `audience`, signed with the key served, with a subject and 5 minutes to live. */
  token(audience: string, claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/** An API key for a test's own requests under access control: it waits for no keys. */
export const OPS_KEY = 'ops-key-0123456789abcdef';

/** `auth:` for a manifest: JWTs checked against `keys`, and OPS_KEY (from the proxy's environment). */
export const heldAuth = (keys: HeldKeys): string =>
  `auth:\n  apiKeys: [{ name: ops, key: "\${OPS_KEY}", servers: ["*"] }]\n  jwt: { issuer: ${keys.issuer}, audience: mcp, jwksUri: "${keys.url}" }\n`;

export async function heldKeys(): Promise<HeldKeys> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let askedForKeys!: () => void;
  const asked = new Promise<void>((resolve) => (askedForKeys = resolve));
  const server = createServer((_req, res) => {
    askedForKeys();
    void released.then(() =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = 'https://issuer.example';
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`,
    issuer,
    asked,
    release,
    token: (audience, claims = {}) =>
      new SignJWT({ sub: 'user-1', ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime('5m')
        .sign(privateKey),
    async close() {
      release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
