/**
 * How many lines of one stream of one child are logged per window (docs/decisions/0045-child-output-budget.md).
 * 200 lets a start-up banner, a stack trace or an `npx` install through whole; 20 lines a second on average
 * is more than a healthy server writes between requests.
 */
export const LOGGED_LINES_PER_WINDOW = 200;
export const WINDOW_MS = 10_000;

/**
 * A log budget for one stream of one child: the first `limit` lines of each window are logged, the rest are
 * counted, and the count is reported once when the window ends. A child writing in a loop then costs the
 * proxy one comparison per line rather than a log line each, and its log at most `limit` lines per window.
 */
export class LineBudget {
  private windowStart = -Infinity;
  private logged = 0;
  private suppressed = 0;

  constructor(
    /** The window that suppressed `lines` lines has ended. */
    private readonly report: (lines: number) => void,
    private readonly limit = LOGGED_LINES_PER_WINDOW,
    private readonly windowMs = WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether this line may be logged; a line that may not is counted for the report. */
  take(): boolean {
    // While lines are being suppressed the timer ends the window: no clock to read per line.
    if (this.suppressed > 0) {
      this.suppressed++;
      return false;
    }
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged < this.limit) {
      this.logged++;
      return true;
    }
    this.suppressed = 1;
    // Not a reason to keep the proxy running: a count lost at exit was of lines no one wanted logged.
    setTimeout(() => this.endWindow(), this.windowStart + this.windowMs - now).unref();
    return false;
  }

  private endWindow(): void {
    const lines = this.suppressed;
    this.suppressed = 0;
    this.windowStart = this.now();
    this.logged = 0;
    this.report(lines);
  }
}
