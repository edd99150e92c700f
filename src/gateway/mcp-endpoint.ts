import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Fleet } from '../fleet/fleet.js';
import type { Limits } from '../manifest/types.js';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';
import { denial, unknownServer, writeDenial, type Denial } from './denial.js';
import { observe, type HttpErrorReporter, type Observers } from './observe.js';
import { originDenial } from './origin.js';
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
 * In order: request id, access log and metrics, origin check, access control, limits, the server. Each
 * request looks its server up in the fleet when it arrives, so a reload never re-mounts anything.
 * Returns false for any other path, which Koa then serves.
 */
export function mcpEndpoint(
  options: McpEndpointOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { fleet, settings, aliasAtRoot, failed } = options;

  async function serve(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const refused = originDenial(textOf(req.headers.origin), settings.allowedOrigins);
    if (refused) return writeDenial(res, refused);
    const sessionId = textOf(req.headers['mcp-session-id']);
    const upstream = fleet.route(name, sessionId);
    // Access first: nothing upstream is touched, and nothing about the server is told, before it passes.
    const denied =
      (await settings.access.guard(req, res, name, upstream?.spec)) ??
      (upstream ? limitDenial(req, settings.limits, fleet, sessionId) : unknownServer(name));
    if (denied) return writeDenial(res, denied);
    await upstream!.handle(req, res);
  }

  return (req, res) => {
    const path = pathOf(req.url ?? '/');
    const server = path === undefined ? undefined : mcpServerOf(path, aliasAtRoot);
    if (server === undefined) return false;
    // Set before anything answers, so that raw MCP responses carry it too (Node merges headers set here
    // into the upstream's writeHead).
    const requestId = requestIdFor(textOf(req.headers['x-request-id']));
    res.setHeader('X-Request-Id', requestId);
    const method = req.method ?? 'GET';
    observe(res, options, { method, path: path!, server, requestId });
    serve(req, res, server).catch((error: Error) => {
      failed(error, requestId);
      if (res.headersSent) res.destroy();
      else
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(errorBody(ErrorCode.InternalError, 'Internal Server Error'));
    });
    return true;
  };
}

/**
 * A header's value, none when empty. Node joins a repeated header into one string (only Set-Cookie comes
 * as a list), so the list case is typing only.
 */
function textOf(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text === '' ? undefined : text;
}

/** The path without its query; a request in absolute form (`POST http://host/path`) has its path read out. */
function pathOf(url: string): string | undefined {
  if (url.startsWith('/')) {
    const query = url.indexOf('?');
    return query === -1 ? url : url.slice(0, query);
  }
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** Case-insensitive, an optional trailing slash, as Koa's router matched these paths before. */
const MCP_PATH = /^\/servers\/([^/]+)\/mcp\/?$/i;
const ROOT_MCP_PATH = /^\/mcp\/?$/i;

/** The server an MCP endpoint path names, percent-decoded; undefined for other paths. */
export function mcpServerOf(path: string, aliasAtRoot: string | undefined): string | undefined {
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
 * Limits checked before a request reaches its server: a declared body over `maxBodyBytes` (413; a body
 * without Content-Length is counted as it is read, by the server's endpoint), and the total session cap
 * across servers for a request that would open a session (503 with Retry-After).
 */
function limitDenial(
  req: { method?: string; headers: IncomingHttpHeaders },
  limits: Limits,
  fleet: Fleet,
  sessionId: string | undefined,
): Denial | undefined {
  if (Number(req.headers['content-length']) > limits.maxBodyBytes) {
    return denial(413, ErrorCode.InvalidRequest, `request body exceeds ${limits.maxBodyBytes} bytes`);
  }
  if (req.method === 'POST' && sessionId === undefined && limits.maxSessions !== undefined) {
    if (fleet.sessionCount() >= limits.maxSessions) {
      return denial(
        503,
        ErrorCode.UpstreamUnavailable,
        `the proxy has reached its limit of ${limits.maxSessions} sessions; retry later`,
        { 'Retry-After': '5' },
      );
    }
  }
  return undefined;
}
