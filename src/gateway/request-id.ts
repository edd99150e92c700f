import { randomUUID } from 'node:crypto';
import type Koa from 'koa';

/**
 * What a caller's own id may look like to be kept. Anything else is replaced rather than trimmed: the id
 * lands in log lines and response headers, so it must not carry markup, spaces, control characters or bulk.
 */
const ACCEPTABLE = /^[A-Za-z0-9._-]{1,128}$/;

/** A caller's `X-Request-Id` when it is a safe token, otherwise a fresh one. */
export function requestIdFor(incoming: string | undefined): string {
  return incoming !== undefined && ACCEPTABLE.test(incoming) ? incoming : randomUUID();
}

/**
 * Gives each request to Koa's routes an id, in `ctx.state.requestId` and in the `X-Request-Id` response
 * header, so that a client's report and the proxy's log line can be matched. (The MCP endpoint gives its
 * own, with the same `requestIdFor`.)
 */
export function requestId(): Koa.Middleware {
  return async (ctx, next) => {
    const id = requestIdFor(ctx.get('X-Request-Id') || undefined);
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    try {
      await next();
    } catch (error) {
      // Koa clears every header before answering an error: hand the id back through the error's own headers.
      if (error instanceof Error) {
        const e = error as Error & { headers?: Record<string, string> };
        e.headers = { ...e.headers, 'X-Request-Id': id };
      }
      throw error;
    }
  };
}
