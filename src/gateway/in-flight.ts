/**
 * Counts requests being answered, so that shutdown can let them finish. A GET on an MCP endpoint is a
 * stream that lasts as long as the session: it is not waited for, it is closed with its session.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  /**
   * Counts a request from now until `end()`, unless it is a GET. Returns whether it was counted, that is
   * whether `end()` is owed when its response closes (an MCP answer may outlive whatever started it).
   */
  begin(method: string): boolean {
    if (method === 'GET') return false;
    this.count++;
    return true;
  }

  end(): void {
    this.count--;
    if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
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
