import type { ServerResponse } from 'node:http';
import type Koa from 'koa';
import { refusal, type Refusal } from '../downstream/wire.js';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';
import { noteRequest, type RequestNotes } from './observe.js';

/**
 * A request the gateway answers itself, with an error: refused by the origin check, access control or a
 * limit, or naming no server. The transport's refusal with headers of its own, decided as a value, so that
 * the MCP endpoint (served on Node's own response) and the Koa routes answer it alike.
 */
export interface Denial extends Refusal {
  /** Headers that go with it: WWW-Authenticate, Retry-After. */
  headers?: Record<string, string>;
  /** What the proxy's log is told besides the message, and the client never is. */
  detail?: string;
}

export function denial(
  status: number,
  code: number,
  message: string,
  headers?: Record<string, string>,
): Denial {
  return { ...refusal(status, code, message), ...(headers && { headers }) };
}

/** Answers on Node's response: a JSON-RPC error body with id null, with the headers Koa gives the same body. */
export function writeDenial(res: ServerResponse, { status, code, message, headers, detail }: Denial): void {
  noteRequest(res, deniedNote(message, detail));
  const body = errorBody(code, message);
  res
    .writeHead(status, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    })
    .end(body);
}

/** Answers through Koa's context, for the routes Koa serves. */
export function setDenial(ctx: Koa.Context, { status, code, message, headers, detail }: Denial): void {
  noteRequest(ctx.res, deniedNote(message, detail));
  ctx.status = status;
  if (headers) ctx.set(headers);
  ctx.type = 'application/json';
  ctx.body = errorBody(code, message);
}

const deniedNote = (message: string, detail: string | undefined): RequestNotes => ({
  denied: message,
  ...(detail !== undefined && { detail }),
});

export function unknownServer(name: string): Denial {
  return denial(
    404,
    ErrorCode.InvalidRequest,
    `no server named "${name}" is served here (it is unknown or disabled)`,
  );
}
