import type { RestartPolicy } from '../manifest/types.js';
import type { ChildExit } from './child.js';

export interface RestartBackoff {
  /** Wait before the first restart: a one-off crash costs clients little, yet a crash loop is not a busy loop. */
  initialDelayMs: number;
  /** The wait doubles per crash in a row up to this, so a server that comes back is noticed within it. */
  maxDelayMs: number;
  /** A run this long counts as a good start: its crash is a new incident, and the backoff starts over. */
  stableAfterMs: number;
  /**
   * Starts in a row that each ended before `stableAfterMs` after which the server is given up as failed.
   * With the delays above, 10 starts span about 90 s of retrying (0.25 + 0.5 + … + 16 + 30 + 30 s):
   * long enough to ride out a transient outage (a registry hiccup during `npx -y`, a dependency
   * restarting), short enough that a broken server is reported while someone is still looking.
   */
  maxFailedStarts: number;
}

export const RESTART_BACKOFF: Readonly<RestartBackoff> = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
  maxFailedStarts: 10,
};

export type RestartDecision =
  { action: 'restart'; delayMs: number } | { action: 'give-up'; reason: string } | { action: 'stay-down' };

/**
 * What to do after a child exited on its own (not after the proxy stopped it: that needs no decision).
 * `recentStarts` are the start times of this server's children, including the one that just exited;
 * older entries than the last stable run no longer matter, so the caller may trim them.
 */
export function decideRestart(
  policy: RestartPolicy,
  exit: ChildExit,
  recentStarts: number[],
  now: number,
  opts: Partial<RestartBackoff> = {},
): RestartDecision {
  // Spawning again cannot help a missing command, a missing directory or a file that is not executable.
  if (exit.error) return { action: 'give-up', reason: `could not start: ${exit.error.message}` };
  const clean = exit.code === 0 && exit.signal === null;
  if (policy === 'never' || (policy === 'on-failure' && clean)) return { action: 'stay-down' };

  const o = { ...RESTART_BACKOFF, ...opts };
  const streak = failedStartsInARow(recentStarts, now, o.stableAfterMs);
  if (streak >= o.maxFailedStarts) {
    const reason = `gave up after ${streak} starts in a row that each ended within ${o.stableAfterMs / 1000} s`;
    return { action: 'give-up', reason };
  }
  const delayMs = Math.min(o.maxDelayMs, o.initialDelayMs * 2 ** Math.max(0, streak - 1));
  return { action: 'restart', delayMs };
}

/**
 * Counts back from the latest start while each run was short. A run ends at the next start at the latest,
 * so a gap below `stableAfterMs` proves that run failed; the latest run ended `now`. A gap also holds the
 * backoff wait, so once waits reach `maxDelayMs` a run must have crashed within `stableAfterMs - maxDelayMs`
 * to keep the streak going: a server that takes longer to crash keeps being retried rather than given up.
 */
function failedStartsInARow(starts: number[], now: number, stableAfterMs: number): number {
  let streak = 0;
  let end = now;
  for (const start of [...starts].sort((a, b) => b - a)) {
    if (end - start >= stableAfterMs) break;
    streak += 1;
    end = start;
  }
  return streak;
}
