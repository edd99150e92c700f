import type { PathSegment } from './diagnostics.js';

/**
 * What a loading stage finds wrong, before it is given a file position. Stages work on plain values and
 * paths; the loader turns each problem into a positioned Diagnostic by looking the path up in the source.
 */
export interface Problem {
  severity: 'error' | 'warning';
  path: PathSegment[];
  message: string;
  /** Point at the key that names `path` rather than its value (unknown keys, duplicate names). */
  atKey?: boolean;
}

export const error = (path: PathSegment[], message: string, atKey = false): Problem => ({
  severity: 'error',
  path,
  message,
  atKey,
});

export const warning = (path: PathSegment[], message: string, atKey = false): Problem => ({
  severity: 'warning',
  path,
  message,
  atKey,
});
