import type Koa from 'koa';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';

/** Browsers on this machine only: a page elsewhere must not drive local servers (DNS rebinding). */
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

/**
 * Refuses requests that a browser sent from a foreign page. Clients that are not browsers send no
 * Origin and pass. The MCP transport asks servers to validate Origin for exactly this reason.
 */
export function originCheck(): Koa.Middleware {
  return async (ctx, next) => {
    const origin = ctx.get('Origin');
    if (origin && !LOOPBACK_ORIGIN.test(origin)) {
      ctx.status = 403;
      ctx.type = 'application/json';
      ctx.body = errorBody(ErrorCode.InvalidRequest, 'Forbidden: this Origin may not use the proxy');
      return;
    }
    await next();
  };
}
