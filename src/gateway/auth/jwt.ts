import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { JwtSpec } from '../../manifest/types.js';
import type { Principal } from './principal.js';

export type JwtResult =
  | { ok: true; principal: Principal }
  /** `invalid`: the token is bad (401); `unavailable`: its keys cannot be had now (503). */
  | { ok: false; kind: 'invalid' | 'unavailable'; reason: string };

/** Tokens may be this much past their expiry, or before their not-before, for clocks that drift. */
const CLOCK_TOLERANCE_S = 60;
/** A failed discovery is tried again after this long, not on every request. */
const DISCOVERY_RETRY_MS = 10_000;

/**
 * Verifies bearer JWTs as an OAuth 2.1 resource server: signature against the issuer's JWKS (from
 * `jwksUri`, or the issuer's OpenID discovery document), issuer, audience, expiry. jose caches the key set
 * and refetches it when a token names a key it does not know (keys rotate), at most once per cooldown.
 */
export class JwtVerifier {
  private keys?: ReturnType<typeof createRemoteJWKSet>;
  private discovery?: Promise<ReturnType<typeof createRemoteJWKSet>>;
  private discoveryFailedAt = 0;

  constructor(private readonly spec: JwtSpec) {
    if (spec.jwksUri) this.keys = createRemoteJWKSet(new URL(spec.jwksUri));
  }

  async verify(token: string): Promise<JwtResult> {
    let keys;
    try {
      keys = await this.keySet();
    } catch (error) {
      return {
        ok: false,
        kind: 'unavailable',
        reason: `the token signing keys cannot be fetched: ${(error as Error).message}`,
      };
    }
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.spec.issuer,
        audience: this.spec.audience,
        clockTolerance: CLOCK_TOLERANCE_S,
        // A token without expiry would be good for ever, once leaked.
        requiredClaims: ['exp'],
      });
      const principal = this.principalOf(payload);
      // Sessions belong to a principal: tokens naming no subject would all be one, and share them.
      if (!principal)
        return { ok: false, kind: 'invalid', reason: 'the token names no subject (sub, oid or azp)' };
      return { ok: true, principal };
    } catch (error) {
      if (error instanceof errors.JWKSTimeout || (error as { code?: string }).code === 'ERR_JOSE_GENERIC') {
        return { ok: false, kind: 'unavailable', reason: 'the token signing keys cannot be fetched' };
      }
      return { ok: false, kind: 'invalid', reason: describe(error) };
    }
  }

  private keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.keys) return Promise.resolve(this.keys);
    if (
      !this.discovery ||
      (this.discoveryFailedAt && Date.now() - this.discoveryFailedAt > DISCOVERY_RETRY_MS)
    ) {
      this.discoveryFailedAt = 0;
      this.discovery = discoverKeys(this.spec.issuer).then(
        (keys) => (this.keys = keys),
        (error: unknown) => {
          this.discoveryFailedAt = Date.now();
          throw error;
        },
      );
    }
    return this.discovery;
  }

  private principalOf(payload: JWTPayload): Principal | undefined {
    const subject = payload.sub ?? payload.oid ?? payload.azp;
    if (typeof subject !== 'string' || subject === '') return undefined;
    return {
      kind: 'jwt',
      id: `jwt:${payload.iss}#${subject}`,
      name: subject,
      roles: listClaim(payload[this.spec.rolesClaim]),
      scopes: listClaim(payload[this.spec.scopesClaim]),
    };
  }
}

async function discoverKeys(issuer: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const document = (await response.json()) as { jwks_uri?: unknown };
  if (typeof document.jwks_uri !== 'string') throw new Error(`${url} names no jwks_uri`);
  return createRemoteJWKSet(new URL(document.jwks_uri));
}

/** Roles come as a list; scopes as a space-separated string (Entra's `scp`) or a list. */
function listClaim(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  return [];
}

/** Why a token was refused, in words safe to send back (never the token). */
function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed)
    return `the token's ${error.claim} claim is not accepted`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is not valid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'the token was not signed by a key of the issuer';
  return 'the token is not a valid JWT';
}
