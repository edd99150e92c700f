/**
 * Structured logs: one JSON object per line on stderr, so container platforms can index them.
 * Callers pass names, counts and ids, never header values, environment values or tokens.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(
  minimum: Level = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const emit = (level: Level) => (event: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < RANK[minimum]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export function parseLevel(value: string | undefined): Level {
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = createLogger('error', () => {});
