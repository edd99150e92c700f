import Router from '@koa/router';
import Koa from 'koa';
import type { Fleet } from '../fleet/fleet.js';
import type { Logger } from '../log.js';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';
import type { InFlight } from './in-flight.js';
import { originCheck } from './origin.js';

export interface AppOptions {
  fleet: Fleet;
  log: Logger;
  /** Counts requests in flight, for a graceful shutdown. */
  inFlight?: InFlight;
  /** Single-server mode: also serve this server at /mcp, as the gateway's per-adapter container did. */
  aliasAtRoot?: string;
}

/** Errors from clients that went away mid-stream: normal for SSE, not worth a log line. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

/**
 * The HTTP face of the proxy. Middleware reads top to bottom: access log, in-flight count, origin check, routes. Each MCP
 * request looks its server up in the fleet at the time it arrives, so a reload never re-mounts routes.
 */
export function createApp({ fleet, log, aliasAtRoot, inFlight }: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true; // errors are logged below, filtered
  app.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code && CLIENT_GONE.has(error.code)) return;
    log.error('http-error', { error: error.message });
  });

  app.use(async (ctx, next) => {
    const started = performance.now();
    await next();
    // MCP requests answer on the raw response; its status is final once headers are out.
    const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
    log.debug('request', {
      method: ctx.method,
      path: ctx.path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });

  if (inFlight) app.use(inFlight.middleware());
  app.use(originCheck());

  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/servers', (ctx) => {
    ctx.body = { servers: fleet.list(), reload: fleet.lastReloadReport ?? null };
  });
  router.get('/servers/:name', (ctx) => {
    const server = fleet.list().find((s) => s.name === ctx.params.name);
    if (!server) return notFound(ctx, ctx.params.name!);
    ctx.body = server;
  });

  const serveMcp = (name: string) => async (ctx: Koa.Context) => {
    const upstream = fleet.route(name, ctx.get('mcp-session-id') || undefined);
    if (!upstream) return notFound(ctx, name);
    ctx.respond = false; // the upstream writes the raw response: streams must not pass through Koa's body handling
    await upstream.handle(ctx.req, ctx.res);
  };
  router.all('/servers/:name/mcp', (ctx) => serveMcp(ctx.params.name!)(ctx));
  if (aliasAtRoot) router.all('/mcp', serveMcp(aliasAtRoot));

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

function notFound(ctx: Koa.Context, name: string): void {
  ctx.status = 404;
  ctx.type = 'application/json';
  ctx.body = errorBody(
    ErrorCode.InvalidRequest,
    `no server named "${name}" is served here (it is unknown or disabled)`,
  );
}
