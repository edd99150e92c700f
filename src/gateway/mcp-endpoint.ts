import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { finished } from 'node:stream';
import type { Fleet } from '../fleet/fleet.js';
import type { Limits } from '../manifest/types.js';
import {
  ALLOWED_METHODS,
  opensSession,
  refuseMethod,
  refuseSessionIdHeader,
  SESSION_LIMIT_RETRY_AFTER_S,
  sessionIdOf,
  sessionLimitReached,
} from '../downstream/wire.js';
import { ErrorCode } from '../upstream/jsonrpc.js';
import type { Upstream } from '../upstream/types.js';
import { denial, unknownServer, writeDenial, type Denial } from './denial.js';
import { headerText } from './headers.js';
import { observe, type HttpErrorReporter, type Observers } from './observe.js';
import { requestIdFor } from './request-id.js';
import type { GatewaySettings } from './settings.js';

export interface McpEndpointOptions extends Observers {
  fleet: Fleet;
  /** Access control, origins and limits; changed in place on reload. */
  settings: GatewaySettings;
  /** Single-server mode: also serve this server at /mcp, as the gateway's per-adapter container did. */
  aliasAtRoot?: string;
  /** An error that escaped: reported as Koa's app reports its own. */
  failed: HttpErrorReporter;
}

/**
 * The MCP endpoints, `/servers/:name/mcp` (and `/mcp` in single-server mode), served on Node's own request
 * and response, ahead of Koa, which serves the operational routes. Every MCP call passes here, and Koa's
 * context, middleware chain and router cost about a sixth of the proxy's CPU per call (decision 0024).
 * In order: request id, access log and metrics, host and origin checks, access control, the transport's
 * own refusals (method, session id header), limits, the server. Each request looks its server up in the
 * fleet when it arrives, so a reload never re-mounts anything.
 * Returns false for any other path, which Koa then serves.
 */
export function mcpEndpoint(
  options: McpEndpointOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { fleet, settings, aliasAtRoot, failed } = options;
  /**
   * Requests that may open a session, let through and not answered yet. They count against
   * `limits.maxSessions` with the sessions open, or initializes arriving together would all pass.
   */
  let opening = 0;

  async function serve(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const refused = settings.browserDenial(req.headers);
    if (refused) return writeDenial(res, refused);
    const sessionId = sessionIdOf(req.headers);
    // Access first: nothing upstream is touched, and nothing about the server is told, before it passes.
    // Routed only once the credential is checked: that may wait (a JWT's keys), and a reload meanwhile may
    // have replaced the version serving when the request came, and stopped it for having nothing to do.
    // Authorized, with nothing waiting in between, against the server as the manifest declares it now:
    // a draining version's own spec has the roles it was started with, which a reload may have revoked.
    let upstream: Upstream | undefined;
    const access = await settings.access.guard(
      req,
      res,
      name,
      () => (upstream = fleet.route(name, sessionId)) && (fleet.specOf(name) ?? upstream.spec),
      sessionId,
    );
    upstream ??= fleet.route(name, sessionId); // access control off: the guard asked for nothing
    const denied =
      access ??
      (upstream
        ? (transportDenial(req) ?? limitDenial(req, settings.limits, () => fleet.sessionCount() + opening))
        : unknownServer(name));
    if (denied) return writeDenial(res, denied);
    if (opensSession(req)) {
      opening++;
      // finished() also calls back for a response already closed: a client gone during the access check.
      finished(res, () => opening--);
    }
    await upstream!.handle(req, res);
  }

  return (req, res) => {
    const path = pathOf(req.url ?? '/');
    const server = path === undefined ? undefined : mcpServerOf(path, aliasAtRoot);
    if (server === undefined) return false;
    // Set before anything answers, so that raw MCP responses carry it too (Node merges headers set here
    // into the upstream's writeHead).
    const requestId = requestIdFor(headerText(req.headers, 'x-request-id'));
    res.setHeader('X-Request-Id', requestId);
    const method = req.method ?? 'GET';
    // Koa reports its own routes' connection errors (a body cut off by requestTimeout, say); these not.
    observe(res, options, { method, path: path!, server, requestId }, failed);
    serve(req, res, server).catch((error: unknown) => {
      failed(error instanceof Error ? error : new Error(String(error)), requestId);
      if (res.headersSent) res.destroy();
      else writeDenial(res, denial(500, ErrorCode.InternalError, 'Internal Server Error'));
    });
    return true;
  };
}

/** The scheme and authority of a request target in absolute form (`POST http://host:port/path`). */
const SCHEME_AND_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;
const QUERY_OR_FRAGMENT = /[?#]/;

/**
 * The path of a request target as it was sent, without query and fragment: neither decoded nor with dot
 * segments resolved, as Koa's router saw it. Undefined for a target that has none (`*`).
 */
function pathOf(target: string): string | undefined {
  let path = target;
  if (!target.startsWith('/')) {
    const prefix = SCHEME_AND_AUTHORITY.exec(target);
    if (!prefix) return undefined;
    path = target.slice(prefix[0].length);
  }
  const end = path.search(QUERY_OR_FRAGMENT);
  return end === -1 ? path : path.slice(0, end);
}

/** Case-insensitive, an optional trailing slash, as Koa's router matched these paths before. */
const MCP_PATH = /^\/servers\/([^/]+)\/mcp\/?$/i;
const ROOT_MCP_PATH = /^\/mcp\/?$/i;

/** The server an MCP endpoint path names, percent-decoded; undefined for other paths. */
function mcpServerOf(path: string, aliasAtRoot: string | undefined): string | undefined {
  if (aliasAtRoot !== undefined && ROOT_MCP_PATH.test(path)) return aliasAtRoot;
  const encoded = MCP_PATH.exec(path)?.[1];
  if (encoded === undefined) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/**
 * What the transport refuses whatever the server's kind, before anything reaches it: a method it does not
 * have (a remote server would be sent it, with the proxy's credentials for it), and an Mcp-Session-Id that
 * names no one session (an empty one would pass the session caps as a request of a session, and reach the
 * upstream as one that opens another).
 */
function transportDenial(req: IncomingMessage): Denial | undefined {
  const method = refuseMethod(req.method);
  if (method) return denial(method.status, method.code, method.message, { Allow: ALLOWED_METHODS });
  return refuseSessionIdHeader(req);
}

/**
 * Limits checked before a request reaches its server: a declared body over `maxBodyBytes` (413; a body
 * without Content-Length is counted as it is read, by the server's endpoint), and the total session cap
 * across servers for a request that would open a session (503 with Retry-After). `sessions`: those open
 * and those being opened, asked only of a request that would open one.
 */
function limitDenial(
  req: { method?: string; headers: IncomingHttpHeaders },
  limits: Limits,
  sessions: () => number,
): Denial | undefined {
  if (Number(req.headers['content-length']) > limits.maxBodyBytes) {
    return denial(413, ErrorCode.InvalidRequest, `request body exceeds ${limits.maxBodyBytes} bytes`);
  }
  if (opensSession(req) && limits.maxSessions !== undefined && sessions() >= limits.maxSessions) {
    const { status, code, message } = sessionLimitReached('the proxy', limits.maxSessions);
    return denial(status, code, message, { 'Retry-After': String(SESSION_LIMIT_RETRY_AFTER_S) });
  }
  return undefined;
}
