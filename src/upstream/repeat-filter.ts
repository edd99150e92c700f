/**
 * Lets each distinct key through once per `windowMs` and counts what it held back meanwhile: for log lines
 * that a failing dependency under load would otherwise write once per request. Remembers at most `maxKeys`
 * keys; past that it forgets those whose window is over, or all of them, so that keys made of varying text
 * cannot grow it without end.
 */
export class RepeatFilter {
  private readonly seen = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys = 100,
  ) {}

  /** Undefined: hold `key` back. Otherwise it passes, with how many times it was held back before. */
  pass(key: string, now = Date.now()): number | undefined {
    const last = this.seen.get(key);
    if (last !== undefined && now - last.at < this.windowMs) {
      last.held++;
      return undefined;
    }
    if (last === undefined && this.seen.size >= this.maxKeys) this.forget(now);
    this.seen.set(key, { at: now, held: 0 });
    return last?.held ?? 0;
  }

  private forget(now: number): void {
    for (const [key, { at }] of this.seen) if (now - at >= this.windowMs) this.seen.delete(key);
    if (this.seen.size >= this.maxKeys) this.seen.clear();
  }
}
