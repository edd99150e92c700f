import type Koa from 'koa';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';

/** Browsers on this machine are always allowed: the proxy often runs beside the tools that call it. */
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

/**
 * Refuses requests that a browser sent from a page whose origin is not allowed (DNS rebinding, a
 * foreign site driving the user's servers). Clients that are not browsers send no Origin and pass.
 * `allowed` is read per request: a reload changes it in place.
 */
export function originCheck(allowed: () => readonly string[]): Koa.Middleware {
  return async (ctx, next) => {
    const origin = ctx.get('Origin');
    if (
      origin &&
      !LOOPBACK_ORIGIN.test(origin) &&
      !allowed().some((a) => a.toLowerCase() === origin.toLowerCase())
    ) {
      ctx.status = 403;
      ctx.type = 'application/json';
      ctx.body = errorBody(ErrorCode.InvalidRequest, 'Forbidden: this Origin may not use the proxy');
      return;
    }
    await next();
  };
}
