import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import type { Fleet } from '../fleet/fleet.js';
import type { Logger } from '../log.js';
import { ErrorCode } from '../upstream/jsonrpc.js';
import { denial, setDenial, unknownServer } from './denial.js';
import type { InFlight } from './in-flight.js';
import { mcpEndpoint } from './mcp-endpoint.js';
import type { Metrics } from './metrics.js';
import { httpErrorReporter, observe, type HttpErrorReporter } from './observe.js';
import { readiness } from './readiness.js';
import { requestId } from './request-id.js';
import type { MayUse } from './auth/access-control.js';
import type { GatewaySettings } from './settings.js';

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

/**
 * The proxy's HTTP face: the MCP endpoints, served ahead of Koa on Node's own request and response, and
 * Koa's app for every other route.
 */
export function createGateway(options: AppOptions): RequestListener {
  const failed = httpErrorReporter(options.log);
  const serveMcp = mcpEndpoint({ ...options, failed });
  const serveOther = createApp(options, failed).callback();
  return (req, res) => {
    if (!serveMcp(req, res)) void serveOther(req, res);
  };
}

/**
 * The proxy's operational routes: health, readiness, metrics, the server listing and the protected-resource
 * metadata. The MCP endpoints themselves are served ahead of this app (`mcp-endpoint.ts`). Middleware reads
 * top to bottom: request id, access log and in-flight count, host and origin checks, routes.
 */
function createApp(
  { fleet, log, metrics, settings, aliasAtRoot, inFlight }: AppOptions,
  failed: HttpErrorReporter,
): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true; // errors are reported below, filtered
  app.on('error', (error: Error, ctx?: Koa.Context) => failed(error, ctx?.state.requestId));

  app.use(requestId());
  app.use(async (ctx, next) => {
    observe(
      ctx.res,
      { log, metrics, inFlight },
      {
        method: ctx.method,
        path: ctx.path,
        requestId: ctx.state.requestId as string,
      },
    );
    await next();
  });
  app.use(async (ctx, next) => {
    const refused = settings.browserDenial(ctx.req.headers);
    if (refused) return setDenial(ctx, refused);
    await next();
  });

  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const verdict = readiness(
      fleet.list().map((server) => {
        // The listing does not carry the startup mode; the spec being served does.
        const spec = fleet.specOf(server.name);
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
  // A caller sees the servers it may use, and nothing of the others: a last error or stderr line can tell
  // commands, hosts and secrets.
  const visibleTo = (mayUse: MayUse, all = fleet.list()) => all.filter((s) => mayUse(fleet.specOf(s.name)!));
  router.get('/servers', access.requireAnyPrincipal(), (ctx) => {
    const all = fleet.list();
    const servers = visibleTo(ctx.state.mayUse as MayUse, all);
    const reload = fleet.lastReloadReport;
    const applying = fleet.applying;
    // Reports and what is being applied may name any server: in full only for a caller who may use them all.
    const partial = servers.length < all.length;
    ctx.body = {
      auth: access.mode,
      servers,
      reload: reload && partial ? { time: reload.time, result: reload.result } : (reload ?? null),
      applying: applying && partial ? { since: applying.since } : (applying ?? null),
    };
  });
  router.get('/servers/:name', access.requireAnyPrincipal(), (ctx) => {
    const server = visibleTo(ctx.state.mayUse as MayUse).find((s) => s.name === ctx.params.name);
    if (!server) return setDenial(ctx, unknownServer(ctx.params.name!));
    ctx.body = server;
  });

  // RFC 9728: where a client learns which authorization server issues tokens for an endpoint.
  const metadata = (name: string) => (ctx: Koa.Context) => {
    // Without JWT auth there is none for any name: said alike for all, it tells nothing of which exist.
    const document = access.resourceMetadata(ctx.req.headers, name);
    if (!document) {
      return setDenial(
        ctx,
        denial(404, ErrorCode.InvalidRequest, 'no OAuth metadata: auth.jwt is not configured'),
      );
    }
    if (!fleet.has(name)) return setDenial(ctx, unknownServer(name));
    // Its URLs are built from these headers: a cache in front must not hand one caller's to another.
    ctx.set('Vary', 'Host, X-Forwarded-Host, X-Forwarded-Proto');
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
