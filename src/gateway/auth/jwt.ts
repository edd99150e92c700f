import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { JwtSpec } from '../../manifest/types.js';
import type { Principal } from './principal.js';

export type JwtResult =
  | { ok: true; principal: Principal }
  /** `invalid`: the token is bad (401); `unavailable`: its keys cannot be had now (503). */
  | { ok: false; kind: 'invalid'; reason: string }
  /** `detail` names where and why, for the proxy's log only: the key set's URL may be an internal one. */
  | { ok: false; kind: 'unavailable'; reason: string; detail: string };

const KEYS_UNAVAILABLE = 'the token signing keys cannot be fetched';

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
  /** Where the keys come from: `jwksUri`, or the one the discovery document named. */
  private keysUrl?: string;
  private discovery?: Promise<ReturnType<typeof createRemoteJWKSet>>;
  private discoveryFailedAt = 0;

  constructor(private readonly spec: JwtSpec) {
    if (spec.jwksUri) this.useKeysFrom(spec.jwksUri);
  }

  async verify(token: string): Promise<JwtResult> {
    let keys;
    try {
      keys = await this.keySet();
    } catch (error) {
      return { ok: false, kind: 'unavailable', reason: KEYS_UNAVAILABLE, detail: (error as Error).message };
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
      // jose's own errors judge the token, but for the key set's fetch timing out or answering other than
      // 200. Anything else (fetch's TypeError for a refused connection) is the keys' endpoint failing too:
      // told as a bad token, every valid one would be refused as invalid while the issuer is unreachable.
      const tokenJudged =
        error instanceof errors.JOSEError &&
        !(error instanceof errors.JWKSTimeout) &&
        error.code !== 'ERR_JOSE_GENERIC';
      if (!tokenJudged) {
        const detail = `${this.keysUrl}: ${failure(error)}`;
        return { ok: false, kind: 'unavailable', reason: KEYS_UNAVAILABLE, detail };
      }
      return { ok: false, kind: 'invalid', reason: describe(error) };
    }
  }

  private useKeysFrom(url: string): ReturnType<typeof createRemoteJWKSet> {
    this.keysUrl = url;
    return (this.keys = createRemoteJWKSet(new URL(url)));
  }

  private keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.keys) return Promise.resolve(this.keys);
    if (
      !this.discovery ||
      (this.discoveryFailedAt && Date.now() - this.discoveryFailedAt > DISCOVERY_RETRY_MS)
    ) {
      this.discoveryFailedAt = 0;
      this.discovery = discoverKeysUrl(this.spec.issuer).then(
        (url) => this.useKeysFrom(url),
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

/** The key set's URL, from the issuer's OpenID discovery document. */
async function discoverKeysUrl(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (error) {
    throw new Error(`${url}: ${failure(error)}`);
  }
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const document = (await response.json()) as { jwks_uri?: unknown };
  if (typeof document.jwks_uri !== 'string') throw new Error(`${url} names no jwks_uri`);
  // A URL that does not parse is the document's fault, told as such rather than thrown from new URL().
  if (!URL.canParse(document.jwks_uri)) throw new Error(`${url} names a jwks_uri that is not a URL`);
  return document.jwks_uri;
}

/** What went wrong with a fetch, in a few words: fetch's own message ("fetch failed") hides the cause. */
function failure(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
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
