import type Koa from 'koa';

/**
 * Counts requests being answered, so that shutdown can let them finish. A GET on an MCP endpoint is a
 * stream that lasts as long as the session: it is not waited for, it is closed with its session.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  middleware(): Koa.Middleware {
    return async (ctx, next) => {
      if (ctx.method === 'GET') return next();
      this.count++;
      // Raw MCP responses outlive `next()`: count until the response is really over.
      ctx.res.once('close', () => {
        this.count--;
        if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
      });
      await next();
    };
  }

  /** Resolves when no request is being answered, or after `ms`, whichever comes first. */
  idle(ms: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
