/**
 * The Streamable HTTP transport's rules for what a client sends (MCP 2025-11-25, "Transports"), as pure
 * checks, and the framing of what goes back (SSE, or one JSON message). Status codes, JSON-RPC codes and
 * messages are the SDK transport's (`webStandardStreamableHttp.js`), so a client that learned them from an
 * SDK server, or from this proxy before it served the transport itself (decision 0020), sees no difference.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { MAX_BATCH_SIZE } from '@modelcontextprotocol/sdk/server/requestBody.js';
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import {
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, errorResponse, isJsonRpcMessage, isObject, isRequestId } from '../upstream/jsonrpc.js';
import { framed, type Piece } from '../upstream/message-text.js';

/** Why a request is answered with an HTTP error rather than passed on. */
export interface Refusal {
  status: number;
  code: number;
  message: string;
}

export const refusal = (status: number, code: number, message: string): Refusal => ({
  status,
  code,
  message,
});

/**
 * The session id a request names; none when its Mcp-Session-Id is absent, or empty or blank (which
 * `refuseSessionIdHeader` refuses). The one reading of the header: what counts a session and what routes
 * one must agree, or a request could open a session that no cap counts.
 */
export function sessionIdOf(headers: IncomingHttpHeaders): string | undefined {
  const id = headers['mcp-session-id'] as string | undefined;
  return id === undefined || id.trim() === '' ? undefined : id;
}

/** A POST without a session id: the only request that can open a session (an initialize). */
export const opensSession = (req: { method?: string; headers: IncomingHttpHeaders }): boolean =>
  req.method === 'POST' && sessionIdOf(req.headers) === undefined;

/**
 * An Mcp-Session-Id that names no one session: empty or blank, or repeated (Node joins a repeated header
 * with ", ", and a comma alone may be part of an id).
 */
export function refuseSessionIdHeader(
  req: Pick<IncomingMessage, 'headers' | 'headersDistinct'>,
): Refusal | undefined {
  const id = req.headers['mcp-session-id'] as string | undefined;
  if (id === undefined) return undefined;
  if (id.trim() === '') {
    return refusal(400, ErrorCode.UpstreamUnavailable, 'Bad Request: Mcp-Session-Id must not be empty');
  }
  if (id.includes(',') && req.headersDistinct['mcp-session-id']!.length > 1) {
    return refusal(400, ErrorCode.UpstreamUnavailable, 'Bad Request: one Mcp-Session-Id only');
  }
  return undefined;
}

/** The methods of the transport: a server, whatever its kind, is asked nothing else. */
const TRANSPORT_METHODS: readonly string[] = ['GET', 'POST', 'DELETE'];

/** The Allow header of a 405. */
export const ALLOWED_METHODS = TRANSPORT_METHODS.join(', ');

/** A method the transport does not have (TRACE, PUT…); answered with `Allow: ALLOWED_METHODS`. */
export function refuseMethod(method: string | undefined): Refusal | undefined {
  if (method !== undefined && TRANSPORT_METHODS.includes(method)) return undefined;
  return refusal(405, ErrorCode.InvalidRequest, 'Method Not Allowed');
}

/** How long a client turned away at a session limit is asked to wait (Retry-After, seconds). */
export const SESSION_LIMIT_RETRY_AFTER_S = 5;

/**
 * An initialize past a session cap: `holder` is what has reached it, `server NAME` (its `maxSessions`,
 * stdio or remote alike) or `the proxy` (`limits.maxSessions`).
 */
export const sessionLimitReached = (holder: string, maxSessions: number): Refusal =>
  refusal(
    503,
    ErrorCode.UpstreamUnavailable,
    `${holder} has reached its limit of ${maxSessions} sessions; retry later`,
  );

/** A POST must accept both answers the server may choose, and carry JSON. */
export function refusePostHeaders(headers: IncomingHttpHeaders): Refusal | undefined {
  // Accept is a list, so a substring test is what it means; Content-Type is parsed, never searched.
  const accept = headers.accept;
  if (!accept?.includes('application/json') || !accept.includes('text/event-stream')) {
    return refusal(
      406,
      ErrorCode.UpstreamUnavailable,
      'Not Acceptable: Client must accept both application/json and text/event-stream',
    );
  }
  if (!isJsonContentType(headers['content-type'])) {
    return refusal(
      415,
      ErrorCode.UpstreamUnavailable,
      'Unsupported Media Type: Content-Type must be application/json',
    );
  }
  return undefined;
}

/** A GET opens the session's server-to-client stream, so it must accept one. */
export function refuseGetHeaders(headers: IncomingHttpHeaders): Refusal | undefined {
  if (headers.accept?.includes('text/event-stream')) return undefined;
  return refusal(406, ErrorCode.UpstreamUnavailable, 'Not Acceptable: Client must accept text/event-stream');
}

/**
 * After initialize, a request may name its protocol version; one this proxy does not know is refused.
 * Without the header the version agreed at initialize holds, as the spec allows for older clients.
 */
export function refuseProtocolVersion(headers: IncomingHttpHeaders): Refusal | undefined {
  const version = headers['mcp-protocol-version'];
  if (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version as string)) return undefined;
  return refusal(
    400,
    ErrorCode.UpstreamUnavailable,
    `Bad Request: Unsupported protocol version: ${String(version)} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`,
  );
}

/** A parsed POST body as the messages it carries: one, or a batch of at most the SDK's limit. */
export function readMessages(body: unknown): JSONRPCMessage[] | Refusal {
  const values = Array.isArray(body) ? body : [body];
  // JSON-RPC 2.0: an empty batch is an invalid request, not an empty success.
  if (values.length === 0) return refusal(400, ErrorCode.InvalidRequest, 'Invalid Request: empty batch');
  if (values.length > MAX_BATCH_SIZE) {
    return refusal(
      400,
      ErrorCode.InvalidRequest,
      `Invalid Request: Batch must not exceed ${MAX_BATCH_SIZE} messages`,
    );
  }
  if (!values.every(isClientMessage)) {
    return refusal(400, ErrorCode.ParseError, 'Parse error: Invalid JSON-RPC message');
  }
  return values;
}

/** The keys each kind of message may have: the SDK's schemas are strict about them. */
const KEYS = {
  request: new Set(['jsonrpc', 'id', 'method', 'params']),
  notification: new Set(['jsonrpc', 'method', 'params']),
  result: new Set(['jsonrpc', 'id', 'result']),
  error: new Set(['jsonrpc', 'id', 'error']),
};

/**
 * What the SDK's JSONRPCMessageSchema accepts, checked by hand: that schema is zod, and ran for every
 * message of every call. Stricter than `isJsonRpcMessage` (which reads children's output): no unknown
 * keys, and `_meta` must be an object with a usable progress token.
 */
function isClientMessage(value: unknown): value is JSONRPCMessage {
  if (!isJsonRpcMessage(value)) return false;
  const kind =
    'method' in value ? ('id' in value ? 'request' : 'notification') : 'result' in value ? 'result' : 'error';
  for (const key in value) if (!KEYS[kind].has(key)) return false;
  if (!('params' in value) || value.params === undefined) return true;
  const meta = (value.params as Record<string, unknown>)._meta;
  if (meta === undefined) return true;
  return isObject(meta) && (meta.progressToken === undefined || isRequestId(meta.progressToken));
}

/** An initialize request as the SDK recognises one: anything less is not the start of a session. */
export function isInitializeRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  if (!('method' in message) || message.method !== 'initialize' || !('id' in message)) return false;
  const params = message.params;
  return (
    isObject(params) &&
    typeof params.protocolVersion === 'string' &&
    isObject(params.capabilities) &&
    isObject(params.clientInfo) &&
    typeof params.clientInfo.name === 'string' &&
    typeof params.clientInfo.version === 'string'
  );
}

/**
 * The headers of every SSE answer in a session: no caching, no transformation, no buffering by a proxy in
 * between. Kept per session, so written as one literal: objects built by spreading a shared one took a
 * hidden class of their own each in the running proxy, about 350 bytes per session that a literal's
 * shared class does not cost.
 */
export function sseHeaders(sessionId: string): OutgoingHttpHeaders {
  return {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'mcp-session-id': sessionId,
  };
}

/**
 * The headers of an answer that is one JSON message (see SseStream): the session id, taken from the
 * session's SSE headers, and the body's length, so that the client reads a plain body rather than chunks.
 */
export function jsonHeaders(session: OutgoingHttpHeaders, body: readonly Piece[]): OutgoingHttpHeaders {
  let length = 0;
  for (const piece of body) length += Buffer.byteLength(piece);
  return {
    'content-type': 'application/json',
    'content-length': length,
    'mcp-session-id': session['mcp-session-id'],
  };
}

/** One response as a JSON body, in pieces to be written in turn. */
export const jsonBody = (response: JSONRPCMessage): Piece[] =>
  writable('', response, '') ?? framed('', tooDeep(response), '');

/**
 * One message as an SSE event, in pieces to be written in turn. JSON has no raw newlines, so the message fits
 * on one `data:` line.
 */
export function sseEvent(message: JSONRPCMessage): Piece[] {
  const pieces = writable(SSE_DATA, message, SSE_END);
  if (pieces) return pieces;
  // A comment line, which clients pass over: a notification or request has no one to be told in its place.
  return 'id' in message && !('method' in message)
    ? framed(SSE_DATA, tooDeep(message), SSE_END)
    : [`: ${TOO_DEEP}\n\n`];
}

const SSE_DATA = 'event: message\ndata: ';
const SSE_END = '\n\n';
const TOO_DEEP = 'a message nested too deeply to pass on was left out';

/**
 * The message framed, unless it is nested deeper than JSON.stringify's recursion goes: a server relaying
 * someone else's document can send one, which parsing it did not mind. Thrown, it would leave the child's
 * output handler and end the proxy.
 */
function writable(prefix: string, message: JSONRPCMessage, suffix: string): Piece[] | undefined {
  try {
    return framed(prefix, message, suffix);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

/** The error a response too deep to write is replaced by, for the same id. */
const tooDeep = (response: JSONRPCMessage): JSONRPCMessage =>
  errorResponse(
    (response as { id: RequestId }).id,
    ErrorCode.InternalError,
    "the server's answer is nested too deeply to pass on",
  );

/**
 * The headers of an answer with no body (202 to notifications, 200 to DELETE). With its length it goes as
 * headers alone; without, Node sends an empty chunked body, terminator and all.
 */
export const EMPTY_ANSWER_HEADERS: OutgoingHttpHeaders = Object.freeze({ 'content-length': 0 });

/** An SSE comment: ignored by clients, but traffic for everything in between that times quiet streams out. */
export const SSE_KEEP_ALIVE = ': keepalive\n\n';
