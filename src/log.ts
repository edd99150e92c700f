/**
 * Structured logs: one JSON object per line on stderr, so container platforms can index them.
 * Callers pass names, counts and ids, never header values, environment values or tokens.
 *
 * Lines are buffered and written together once per turn of the event loop: stderr on a pipe is a
 * synchronous write(2) that also wakes the reader, and one per access-log line cost more than the line
 * itself (docs/decisions/0018-buffered-logging.md). An error line is written at once, after what was
 * buffered before it; whatever is buffered when the process exits is written then.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  /** Whether lines of `level` are written: a hot path asks first, so as not to build fields for nothing. */
  enabled(level: Level): boolean;
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** LOG_LEVEL as read: the level, and what was wrong with the text if it named none. */
export interface LevelSetting {
  level: Level;
  /** The text given, when it named no level (the logger says so in its first line). */
  unknown?: string;
}

let clockMs = -1;
let clockText = '';

/** The time for a line: formatted once per millisecond, since under load many lines share one. */
function now(): string {
  const ms = Date.now();
  if (ms !== clockMs) {
    clockMs = ms;
    clockText = new Date(ms).toISOString();
  }
  return clockText;
}

/** The flush of every logger that has buffered since the last scheduled write. */
const scheduled = new Set<() => void>();

function flushScheduled(): void {
  const flushes = [...scheduled];
  scheduled.clear(); // first: a writer that throws must not keep the others from being scheduled again
  for (const flush of flushes) flush();
}

// 'exit' listeners run on process.exit(), on an uncaught exception and when the loop runs dry, and
// stderr is written synchronously to pipes, files and terminals: nothing buffered is lost to those.
process.on('exit', flushScheduled);

/**
 * `setting` is the least level written, or LOG_LEVEL as parseLevel read it: one that named no level is
 * warned of in the logger's first line. `write` receives one or more whole lines at a time.
 */
export function createLogger(
  setting: Level | LevelSetting = 'info',
  write: (lines: string) => void = (lines) => process.stderr.write(lines),
): Logger {
  const { level: minimum, unknown } = typeof setting === 'string' ? { level: setting } : setting;
  let buffered = '';
  const flush = () => {
    if (buffered === '') return;
    const lines = buffered;
    buffered = '';
    write(lines);
  };
  const enabled = (level: Level) => RANK[level] >= RANK[minimum];
  const emit = (level: Level) => (event: string, fields?: Record<string, unknown>) => {
    if (!enabled(level)) return;
    buffered += `${JSON.stringify({ time: now(), level, event, ...fields })}\n`;
    if (level === 'error') return flush();
    if (scheduled.size === 0) setImmediate(flushScheduled);
    scheduled.add(flush);
  };
  const logger = {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    enabled,
  };
  if (unknown !== undefined) {
    logger.warn('log-level-unknown', { LOG_LEVEL: unknown, accepted: ACCEPTED_LEVELS, using: minimum });
  }
  return logger;
}

const ACCEPTED_LEVELS = 'debug, info, warn (or warning), error; in any case';

/**
 * LOG_LEVEL, in any case, with `warning` for `warn`. Unset or empty means info, and so does anything else,
 * which the logger then warns of.
 */
export function parseLevel(value: string | undefined): LevelSetting {
  const text = value?.trim().toLowerCase() ?? '';
  if (text === '') return { level: 'info' };
  const level = text === 'warning' ? 'warn' : text;
  return Object.hasOwn(RANK, level) ? { level: level as Level } : { level: 'info', unknown: value };
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = createLogger('error', () => {});
