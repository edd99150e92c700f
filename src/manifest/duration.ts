const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest wait a Node timer takes, about 24.8 days. Node fires a timer set for longer after 1 ms
 * instead, so a generous `timeout: 600h` would time every request out at once; any longer duration counts
 * as this one, which no wait of the proxy's can tell apart from "for ever".
 */
export const LONGEST_DURATION_MS = 2 ** 31 - 1;

/**
 * `250ms`, `30s`, `5m`, `1h`, a bare number of milliseconds, as a string or a number; at most
 * `LONGEST_DURATION_MS`. Schema-checked first.
 */
export function parseDuration(value: string | number): number {
  return Math.min(typeof value === 'number' ? value : millisecondsIn(value), LONGEST_DURATION_MS);
}

function millisecondsIn(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!;
}
