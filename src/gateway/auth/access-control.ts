import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type Koa from 'koa';
import type { AuthConfig, ServerSpec } from '../../manifest/types.js';
import { ErrorCode } from '../../upstream/jsonrpc.js';
import { denial, setDenial, type Denial } from '../denial.js';
import { firstHeaderValue } from '../headers.js';
import { noteRequest } from '../observe.js';
import { matchApiKey } from './api-keys.js';
import { presentedCredential } from './credentials.js';
import { JwtVerifier } from './jwt.js';
import { authorize } from './policy.js';
import type { Principal } from './principal.js';
import { SessionOwners } from './session-owners.js';

export type AuthMode = 'none' | 'api-keys' | 'jwt' | 'api-keys+jwt';

/** How often sessions that no server holds any more are forgotten. */
const PRUNE_EVERY_MS = 60_000;

/** Whether the caller may use a server, and so see it in the status endpoints. */
export type MayUse = (server: ServerSpec) => boolean;

const anyServer: MayUse = () => true;

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

  /**
   * For the status endpoints: any valid credential may read them when access control is on. What it may
   * see of the servers, `ctx.state.mayUse` tells (`mayUse`).
   */
  requireAnyPrincipal(): Koa.Middleware {
    return async (ctx, next) => {
      if (!this.config) {
        ctx.state.mayUse = anyServer;
        return next();
      }
      const principal = await this.authenticate(ctx.req.headers, undefined);
      if (isDenial(principal)) return setDenial(ctx, principal);
      noteRequest(ctx.res, { principal: principal.id });
      ctx.state.mayUse = ((server) => authorize(principal, server).allow) satisfies MayUse;
      await next();
    };
  }

  /**
   * For /servers/:name/mcp: authenticates, authorizes for the server, checks the session's owner, and
   * records the owner of a session the response opens. `specNow` gives the spec to authorize against (the
   * server as the manifest declares it now), undefined for a name the fleet does not serve: asked once the
   * credential is checked, which may wait (a JWT's keys), during which a reload may add the server or
   * change its roles; nothing waits after it. `sessionId` is the request's Mcp-Session-Id, if it has one.
   */
  async guard(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    specNow: () => ServerSpec | undefined,
    sessionId: string | undefined,
  ): Promise<Denial | undefined> {
    if (!this.config) return undefined;
    const principal = await this.authenticate(req.headers, name);
    if (isDenial(principal)) return principal;
    noteRequest(res, { principal: principal.id });
    const spec = specNow();
    // An unknown server is answered 404 after this: only to callers who may ask.
    if (spec) {
      const decision = authorize(principal, spec);
      if (!decision.allow) {
        const challenge = this.challenge(req.headers, name, 'insufficient_scope');
        return deny(403, ErrorCode.InvalidRequest, `Forbidden: ${decision.reason}`, challenge);
      }
    }
    if (sessionId !== undefined) {
      if (!this.owners.mayUse(sessionId, name, principal.id)) {
        return denial(404, ErrorCode.SessionNotFound, 'Session not found');
      }
      // Only once the session is gone: a DELETE the server refused leaves it open, and still its owner's.
      if (req.method === 'DELETE') {
        res.once('finish', () => res.statusCode < 300 && this.owners.forget(sessionId));
      }
    } else {
      this.recordOpenedSession(res, name, principal.id);
    }
    return undefined;
  }

  /** RFC 9728 protected-resource metadata for one server's endpoint; undefined without JWT auth. */
  resourceMetadata(headers: IncomingHttpHeaders, name: string): Record<string, unknown> | undefined {
    const jwt = this.config?.jwt;
    if (!jwt) return undefined;
    return {
      resource: `${publicOrigin(headers)}/servers/${encodeURIComponent(name)}/mcp`,
      authorization_servers: [jwt.issuer],
      bearer_methods_supported: ['header'],
      resource_name: name,
    };
  }

  /** The principal, or the 401/503 to answer instead. */
  private async authenticate(
    headers: IncomingHttpHeaders,
    server: string | undefined,
  ): Promise<Principal | Denial> {
    const credential = presentedCredential(headers);
    if (credential === undefined) {
      return deny(
        401,
        ErrorCode.InvalidRequest,
        'Unauthorized: send Authorization: Bearer <token> or X-API-Key',
        this.challenge(headers, server),
      );
    }
    if ('malformed' in credential) {
      return deny(
        401,
        ErrorCode.InvalidRequest,
        `Unauthorized: ${credential.malformed}`,
        this.challenge(headers, server, 'invalid_request'),
      );
    }
    const byKey = matchApiKey(this.config!.apiKeys, credential.value);
    if (byKey) return byKey;
    if (this.jwt && credential.value.split('.').length === 3) {
      const result = await this.jwt.verify(credential.value);
      if (result.ok) return result.principal;
      if (result.kind === 'unavailable') {
        return {
          ...denial(503, ErrorCode.UpstreamUnavailable, `Service Unavailable: ${result.reason}`, {
            'Retry-After': '10',
          }),
          detail: result.detail,
        };
      }
      return deny(
        401,
        ErrorCode.InvalidRequest,
        `Unauthorized: ${result.reason}`,
        this.challenge(headers, server, 'invalid_token'),
      );
    }
    return deny(
      401,
      ErrorCode.InvalidRequest,
      'Unauthorized: the credential is not valid',
      this.challenge(headers, server, 'invalid_token'),
    );
  }

  /** The WWW-Authenticate value: where to learn how to get a token (RFC 9728), and what went wrong. */
  private challenge(headers: IncomingHttpHeaders, server: string | undefined, error?: string): string {
    const parts = [
      this.jwt && server
        ? `resource_metadata="${publicOrigin(headers)}/.well-known/oauth-protected-resource/servers/${encodeURIComponent(server)}/mcp"`
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

/** A refusal that tells the client how to authenticate. */
function deny(status: number, code: number, message: string, challenge: string): Denial {
  return denial(status, code, message, { 'WWW-Authenticate': challenge });
}

function isDenial(result: Principal | Denial): result is Denial {
  return 'status' in result;
}

/**
 * The origin clients use to reach the proxy, for URLs in metadata. Behind an ingress that terminates
 * TLS, X-Forwarded-Proto and X-Forwarded-Host say it; they only shape URLs handed back to that caller.
 * The proxy itself serves plain HTTP. Host is read as Koa reads it: its first value, without a user part.
 */
function publicOrigin(headers: IncomingHttpHeaders): string {
  const forwardedProto = firstHeaderValue(headers, 'x-forwarded-proto').toLowerCase();
  const proto = forwardedProto === 'https' ? 'https' : 'http';
  // Whoever sends these headers chooses what comes back, quoted in WWW-Authenticate: only a host and port.
  const forwardedHost = firstHeaderValue(headers, 'x-forwarded-host');
  const host = HOST_AND_PORT.test(forwardedHost)
    ? forwardedHost
    : hostOnly(firstHeaderValue(headers, 'host'));
  return `${proto}://${host}`;
}

/**
 * A DNS name (with `_` too, as Docker Compose service names have) or IPv4 address, or an IPv6 address in
 * brackets; with an optional port.
 */
const HOST_AND_PORT = /^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The Host header as a host and port: `user@host:port` (invalid in a Host header, RFC 9110 §7.2) without
 * its user part; '' for anything else that is not one.
 */
function hostOnly(host: string): string {
  if (HOST_AND_PORT.test(host)) return host;
  if (!host.includes('@')) return '';
  try {
    return new URL(`http://${host}`).host;
  } catch {
    return '';
  }
}
