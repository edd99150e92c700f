import type { ServerResponse } from 'node:http';
import type Koa from 'koa';
import type { AuthConfig, ServerSpec } from '../../manifest/types.js';
import { ErrorCode, errorBody } from '../../upstream/jsonrpc.js';
import { matchApiKey } from './api-keys.js';
import { presentedCredential } from './credentials.js';
import { JwtVerifier } from './jwt.js';
import { authorize } from './policy.js';
import type { Principal } from './principal.js';
import { SessionOwners } from './session-owners.js';

export type AuthMode = 'none' | 'api-keys' | 'jwt' | 'api-keys+jwt';

/** How often sessions that no server holds any more are forgotten. */
const PRUNE_EVERY_MS = 60_000;

/**
 * Inbound access control, checked before any upstream is touched: who is calling (API key or JWT), may
 * they use this server, and is the session theirs. Reconfigured in place on reload, so routes and
 * middleware never change.
 */
export class AccessControl {
  private config?: AuthConfig;
  private jwt?: JwtVerifier;
  private readonly owners = new SessionOwners();
  private pruner?: NodeJS.Timeout;

  constructor(private readonly isLive: (server: string, sessionId: string) => boolean) {}

  configure(config: AuthConfig | undefined): void {
    // A new verifier only when the JWT settings change: its key cache is worth keeping across reloads.
    if (JSON.stringify(config?.jwt) !== JSON.stringify(this.config?.jwt)) {
      this.jwt = config?.jwt ? new JwtVerifier(config.jwt) : undefined;
    }
    this.config = config;
    if (config && !this.pruner) {
      this.pruner = setInterval(() => this.owners.prune(this.isLive), PRUNE_EVERY_MS).unref();
    }
  }

  get mode(): AuthMode {
    if (!this.config) return 'none';
    const keys = this.config.apiKeys.length > 0;
    return keys && this.jwt ? 'api-keys+jwt' : keys ? 'api-keys' : 'jwt';
  }

  /** For the status endpoints: any valid credential may read them when access control is on. */
  requireAnyPrincipal(): Koa.Middleware {
    return async (ctx, next) => {
      if (!this.config) return next();
      const principal = await this.authenticate(ctx, undefined);
      if (principal) await next();
    };
  }

  /**
   * For /servers/:name/mcp: authenticates, authorizes for the server, checks the session's owner, and
   * records the owner of a session the response opens. False after answering the refusal itself.
   * `spec` is the server's current spec, undefined for a name the fleet does not serve.
   */
  async guard(ctx: Koa.Context, name: string, spec: ServerSpec | undefined): Promise<boolean> {
    if (!this.config) return true;
    const principal = await this.authenticate(ctx, name);
    if (!principal) return false;
    // An unknown server is the router's 404: said only to callers who may ask.
    if (spec) {
      const decision = authorize(principal, spec);
      if (!decision.allow) {
        const challenge = this.challenge(ctx, name, 'insufficient_scope');
        deny(ctx, 403, ErrorCode.InvalidRequest, `Forbidden: ${decision.reason}`, challenge);
        return false;
      }
    }
    const sessionId = ctx.get('mcp-session-id');
    if (sessionId) {
      if (!this.owners.mayUse(sessionId, name, principal.id)) {
        deny(ctx, 404, ErrorCode.SessionNotFound, 'Session not found');
        return false;
      }
      if (ctx.method === 'DELETE') ctx.res.once('finish', () => this.owners.forget(sessionId));
    } else {
      this.recordOpenedSession(ctx.res, name, principal.id);
    }
    return true;
  }

  /** RFC 9728 protected-resource metadata for one server's endpoint; undefined without JWT auth. */
  resourceMetadata(ctx: Koa.Context, name: string): Record<string, unknown> | undefined {
    const jwt = this.config?.jwt;
    if (!jwt) return undefined;
    return {
      resource: `${publicOrigin(ctx)}/servers/${encodeURIComponent(name)}/mcp`,
      authorization_servers: [jwt.issuer],
      bearer_methods_supported: ['header'],
      resource_name: name,
    };
  }

  /** The principal, or undefined after answering 401/503 itself. */
  private async authenticate(ctx: Koa.Context, server: string | undefined): Promise<Principal | undefined> {
    const credential = presentedCredential(ctx.req.headers);
    if (credential === undefined) {
      deny(
        ctx,
        401,
        ErrorCode.InvalidRequest,
        'Unauthorized: send Authorization: Bearer <token> or X-API-Key',
        this.challenge(ctx, server),
      );
      return undefined;
    }
    if ('malformed' in credential) {
      deny(
        ctx,
        401,
        ErrorCode.InvalidRequest,
        `Unauthorized: ${credential.malformed}`,
        this.challenge(ctx, server, 'invalid_request'),
      );
      return undefined;
    }
    const byKey = matchApiKey(this.config!.apiKeys, credential.value);
    if (byKey) return byKey;
    if (this.jwt && credential.value.split('.').length === 3) {
      const result = await this.jwt.verify(credential.value);
      if (result.ok) return result.principal;
      if (result.kind === 'unavailable') {
        ctx.set('Retry-After', '10');
        deny(ctx, 503, ErrorCode.UpstreamUnavailable, `Service Unavailable: ${result.reason}`);
        return undefined;
      }
      deny(
        ctx,
        401,
        ErrorCode.InvalidRequest,
        `Unauthorized: ${result.reason}`,
        this.challenge(ctx, server, 'invalid_token'),
      );
      return undefined;
    }
    deny(
      ctx,
      401,
      ErrorCode.InvalidRequest,
      'Unauthorized: the credential is not valid',
      this.challenge(ctx, server, 'invalid_token'),
    );
    return undefined;
  }

  /** The WWW-Authenticate value: where to learn how to get a token (RFC 9728), and what went wrong. */
  private challenge(ctx: Koa.Context, server: string | undefined, error?: string): string {
    const parts = [
      this.jwt && server
        ? `resource_metadata="${publicOrigin(ctx)}/.well-known/oauth-protected-resource/servers/${encodeURIComponent(server)}/mcp"`
        : 'realm="mcp-proxy"',
    ];
    if (error) parts.push(`error="${error}"`);
    return `Bearer ${parts.join(', ')}`;
  }

  /** The transport answers initialize with the new session's id in a header: catch it on its way out. */
  private recordOpenedSession(res: ServerResponse, server: string, principal: string): void {
    const writeHead = res.writeHead;
    res.writeHead = ((...args: Parameters<ServerResponse['writeHead']>) => {
      res.writeHead = writeHead;
      const headers = args.find((a) => a !== null && typeof a === 'object') as
        Record<string, unknown> | undefined;
      const id =
        headers?.['mcp-session-id'] ?? headers?.['Mcp-Session-Id'] ?? res.getHeader('mcp-session-id');
      if (typeof id === 'string') this.owners.record(id, server, principal);
      return writeHead.apply(res, args);
    }) as ServerResponse['writeHead'];
  }
}

function deny(ctx: Koa.Context, status: number, code: number, message: string, challenge?: string): void {
  ctx.status = status;
  if (challenge) ctx.set('WWW-Authenticate', challenge);
  ctx.type = 'application/json';
  ctx.body = errorBody(code, message);
}

/**
 * The origin clients use to reach the proxy, for URLs in metadata. Behind an ingress that terminates
 * TLS, X-Forwarded-Proto and X-Forwarded-Host say it; they only shape URLs handed back to that caller.
 */
function publicOrigin(ctx: Koa.Context): string {
  const proto = ctx.get('x-forwarded-proto').split(',')[0]?.trim() || ctx.protocol;
  const host = ctx.get('x-forwarded-host').split(',')[0]?.trim() || ctx.host;
  return `${proto}://${host}`;
}
