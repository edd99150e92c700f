import Router from '@koa/router';
import Koa from 'koa';
import type { Fleet } from '../fleet/fleet.js';
import type { Logger } from '../log.js';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';
import type { Limits } from '../manifest/types.js';
import type { InFlight } from './in-flight.js';
import type { GatewaySettings } from './settings.js';
import type { Metrics } from './metrics.js';
import { originCheck } from './origin.js';
import { readiness } from './readiness.js';
import { requestId } from './request-id.js';

export interface AppOptions {
  fleet: Fleet;
  log: Logger;
  metrics: Metrics;
  /** Access control, origins and limits; changed in place on reload. */
  settings: GatewaySettings;
  /** Counts requests in flight, for a graceful shutdown. */
  inFlight: InFlight;
  /** Single-server mode: also serve this server at /mcp, as the gateway's per-adapter container did. */
  aliasAtRoot?: string;
}

/** Errors from clients that went away mid-stream: normal for SSE, not worth a log line. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

/** nginx's "client closed request": the client left before any answer was sent, so no real status exists. */
const CLIENT_CLOSED = 499;

/**
 * The HTTP face of the proxy. Middleware reads top to bottom: request id, access log, metrics and in-flight
 * count, origin check, routes; on the MCP routes, access control, then limits, then the server. Each MCP request looks its server up in the fleet at the time it arrives, so
 * a reload never re-mounts routes.
 */
export function createApp({ fleet, log, metrics, settings, aliasAtRoot, inFlight }: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true; // errors are logged below, filtered
  app.on('error', (error: NodeJS.ErrnoException, ctx?: Koa.Context) => {
    if (error.code && CLIENT_GONE.has(error.code)) return;
    log.error('http-error', { error: error.message, requestId: ctx?.state.requestId });
  });

  app.use(requestId());
  app.use(observe(log, metrics, inFlight, aliasAtRoot));
  app.use(originCheck(() => settings.allowedOrigins));

  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const verdict = readiness(
      fleet.list().map((server) => {
        // The listing does not carry the startup mode; the upstream being served knows its spec.
        const spec = fleet.route(server.name)?.spec;
        return { ...server, ...(spec?.kind === 'stdio' && { startup: spec.startup }) };
      }),
    );
    ctx.status = verdict.status === 'ready' ? 200 : 503;
    ctx.body = verdict;
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.contentType;
    ctx.body = await metrics.render();
  });
  const { access } = settings;
  router.get('/servers', access.requireAnyPrincipal(), (ctx) => {
    ctx.body = { auth: access.mode, servers: fleet.list(), reload: fleet.lastReloadReport ?? null };
  });
  router.get('/servers/:name', access.requireAnyPrincipal(), (ctx) => {
    const server = fleet.list().find((s) => s.name === ctx.params.name);
    if (!server) return notFound(ctx, ctx.params.name!);
    ctx.body = server;
  });

  const serveMcp = (name: string) => async (ctx: Koa.Context) => {
    const sessionId = ctx.get('mcp-session-id') || undefined;
    const upstream = fleet.route(name, sessionId);
    // Access first: nothing upstream is touched, and nothing about the server is told, before it passes.
    if (!(await access.guard(ctx, name, upstream?.spec))) return;
    if (!upstream) return notFound(ctx, name);
    if (!withinLimits(ctx, settings.limits, fleet, sessionId)) return;
    ctx.respond = false; // the upstream writes the raw response: streams must not pass through Koa's body handling
    await upstream.handle(ctx.req, ctx.res);
  };
  router.all('/servers/:name/mcp', (ctx) => serveMcp(ctx.params.name!)(ctx));
  if (aliasAtRoot) router.all('/mcp', serveMcp(aliasAtRoot));

  // RFC 9728: where a client learns which authorization server issues tokens for an endpoint.
  const metadata = (name: string) => (ctx: Koa.Context) => {
    const document = access.resourceMetadata(ctx, name);
    if (!document || !fleet.has(name)) return notFound(ctx, name);
    ctx.body = document;
  };
  router.get('/.well-known/oauth-protected-resource/servers/:name/mcp', (ctx) =>
    metadata(ctx.params.name!)(ctx),
  );
  if (aliasAtRoot) router.get('/.well-known/oauth-protected-resource/mcp', metadata(aliasAtRoot));

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/**
 * One access-log line and the request metrics per finished request, and the in-flight count. All wait for
 * the response to close, not for `next()`: an MCP answer is written on the raw response and may stream long
 * after the middleware chain returned. They share one 'close' listener, which is paid for on every request.
 * The log line holds the method, the path without its query, the server, the status, the time and the
 * request id; never header values or bodies, which can carry tokens.
 */
function observe(
  log: Logger,
  metrics: Metrics,
  inFlight: InFlight,
  aliasAtRoot: string | undefined,
): Koa.Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    const { method, path } = ctx;
    // Found from the path rather than the router, so that requests refused before routing (origin, auth)
    // are counted against the server they were meant for.
    const server = mcpServerOf(path, aliasAtRoot);
    const counted = inFlight.begin(method);
    ctx.res.once('close', () => {
      if (counted) inFlight.end();
      const ms = performance.now() - started;
      const status = ctx.res.headersSent ? ctx.res.statusCode : CLIENT_CLOSED;
      if (server !== undefined) metrics.request({ server, method, status, seconds: ms / 1000 });
      if (log.enabled('info')) {
        log.info('request', {
          requestId: ctx.state.requestId,
          method,
          path,
          ...(server !== undefined && { server }),
          status,
          ms: Math.round(ms * 10) / 10,
        });
      }
    });
    await next();
  };
}

/** Matches what the router matches: case-insensitive, an optional trailing slash. */
const MCP_PATH = /^\/servers\/([^/]+)\/mcp\/?$/i;
const ROOT_MCP_PATH = /^\/mcp\/?$/i;

/** The server an MCP endpoint path names, decoded as the router decodes it; undefined for other paths. */
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
 * Limits checked before a request reaches its server: a declared body over `maxBodyBytes` (413; a body
 * without Content-Length is counted as it is read, by the server's endpoint), and the total session cap
 * across servers for a request that would open a session (503 with Retry-After).
 */
function withinLimits(
  ctx: Koa.Context,
  limits: Limits,
  fleet: Fleet,
  sessionId: string | undefined,
): boolean {
  if (Number(ctx.get('content-length')) > limits.maxBodyBytes) {
    ctx.status = 413;
    ctx.type = 'application/json';
    ctx.body = errorBody(ErrorCode.InvalidRequest, `request body exceeds ${limits.maxBodyBytes} bytes`);
    return false;
  }
  if (ctx.method === 'POST' && sessionId === undefined && limits.maxSessions !== undefined) {
    if (fleet.sessionCount() >= limits.maxSessions) {
      ctx.status = 503;
      ctx.set('Retry-After', '5');
      ctx.type = 'application/json';
      ctx.body = errorBody(
        ErrorCode.UpstreamUnavailable,
        `the proxy has reached its limit of ${limits.maxSessions} sessions; retry later`,
      );
      return false;
    }
  }
  return true;
}

function notFound(ctx: Koa.Context, name: string): void {
  ctx.status = 404;
  ctx.type = 'application/json';
  ctx.body = errorBody(
    ErrorCode.InvalidRequest,
    `no server named "${name}" is served here (it is unknown or disabled)`,
  );
}
