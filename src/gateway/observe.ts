import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { InFlight } from './in-flight.js';
import type { Metrics } from './metrics.js';

/** What watches every request: the access log, the request metrics, the in-flight count. */
export interface Observers {
  log: Logger;
  metrics: Metrics;
  inFlight: InFlight;
}

export interface RequestFacts {
  method: string;
  /** The path without its query. */
  path: string;
  /** The server an MCP endpoint path names; none for the other routes. */
  server?: string;
  requestId: string;
}

/** Something in the gateway failed for a request (a bug, or a client gone mid-answer). */
export type HttpErrorReporter = (error: NodeJS.ErrnoException, requestId: string | undefined) => void;

/** Errors from clients that went away mid-stream: normal for SSE, not worth a log line. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

export function httpErrorReporter(log: Logger): HttpErrorReporter {
  return (error, requestId) => {
    if (error.code && CLIENT_GONE.has(error.code)) return;
    log.error('http-error', { error: error.message, requestId });
  };
}

/**
 * What the access-log line tells of a request beyond what `observe` is given, learnt while it is answered:
 * who called (the principal's id: `key:<name>`, or `jwt:<issuer>#<subject>`), and why it was refused.
 */
export interface RequestNotes {
  principal?: string;
  denied?: string;
  /** Of a refusal: what only the log is told (where and why a JWT key set could not be fetched). */
  detail?: string;
}

const notes = new WeakMap<ServerResponse, RequestNotes>();

/** Adds to what the request's access-log line will say. */
export function noteRequest(res: ServerResponse, note: RequestNotes): void {
  const known = notes.get(res);
  notes.set(res, known ? { ...known, ...note } : note);
}

/** nginx's "client closed request": the client left before any answer was sent, so no real status exists. */
const CLIENT_CLOSED = 499;

/**
 * One access-log line and the request metrics per finished request, and the in-flight count. All wait for
 * the response to close: an MCP answer may stream long after whoever started it returned. They share one
 * 'close' listener, which is paid for on every request. The log line holds the method, the path without
 * its query, the server, the status, the time, the request id and its notes (`noteRequest`); never header
 * values or bodies, which can carry tokens.
 */
export function observe(
  res: ServerResponse<IncomingMessage>,
  { log, metrics, inFlight }: Observers,
  { method, path, server, requestId }: RequestFacts,
  /** Given, an error that ended the request's connection is reported to it. */
  connectionFailed?: HttpErrorReporter,
): void {
  const started = performance.now();
  const counted = inFlight.begin(method);
  res.once('close', () => {
    if (counted) inFlight.end();
    const broken = connectionFailed && res.req.socket?.errored;
    if (broken) connectionFailed(broken, requestId);
    const ms = performance.now() - started;
    const status = res.headersSent ? res.statusCode : CLIENT_CLOSED;
    if (server !== undefined) metrics.request({ server, method, status, seconds: ms / 1000 });
    if (log.enabled('info')) {
      log.info('request', {
        requestId,
        method,
        path,
        ...(server !== undefined && { server }),
        status,
        ms: Math.round(ms * 10) / 10,
        ...notes.get(res),
      });
    }
  });
}
