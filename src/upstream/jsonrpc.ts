import type {
  JSONRPCErrorResponse,
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  JSONRPCResultResponse,
  RequestId,
} from '@modelcontextprotocol/sdk/types.js';

// Structural checks on the hot path. The SDK's guards run zod on every message; these only look at the
// keys that tell the kinds apart, because the message has already been checked (by
// `downstream/wire.ts` when it came from a client, by `isJsonRpcMessage` when it came from a child).

export type Response = JSONRPCResultResponse | JSONRPCErrorResponse;

export const isRequest = (m: JSONRPCMessage): m is JSONRPCRequest => 'method' in m && 'id' in m;

export const isNotification = (m: JSONRPCMessage): m is JSONRPCNotification => 'method' in m && !('id' in m);

export const isResponse = (m: JSONRPCMessage): m is Response => !('method' in m) && 'id' in m;

/**
 * The shape test of the SDK's JSONRPCMessageSchema without running zod on every message of the hot path.
 * Looser in one way: unknown top-level keys pass; whoever reads a message checks the parts it uses.
 */
export function isJsonRpcMessage(value: unknown): value is JSONRPCMessage {
  if (!isObject(value) || value.jsonrpc !== '2.0') return false;
  if (typeof value.method === 'string') {
    return (
      (!('id' in value) || isRequestId(value.id)) && (value.params === undefined || isObject(value.params))
    );
  }
  if ('result' in value) return isRequestId(value.id) && isObject(value.result);
  const error = value.error;
  return (
    isObject(error) &&
    Number.isInteger(error.code) &&
    typeof error.message === 'string' &&
    (!('id' in value) || isRequestId(value.id))
  );
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Integers only as far as they survive JSON.parse exactly: a larger one would come back as another id. */
export const isRequestId = (id: unknown): id is RequestId =>
  typeof id === 'string' || Number.isSafeInteger(id);

/** Server-side error codes of JSON-RPC, for errors the proxy itself answers. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Implementation-defined server errors (-32000 to -32099): the upstream could not be reached or used. */
  UpstreamUnavailable: -32000,
  /** The SDK's code for a session the server does not know, and for a request that timed out. */
  SessionNotFound: -32001,
  RequestTimeout: -32001,
} as const;

export function errorResponse(id: RequestId, code: number, message: string): JSONRPCErrorResponse {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

/** A JSON-RPC error body for an HTTP error answer, where no request id can be known. */
export function errorBody(code: number, message: string, id: RequestId | null = null): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } });
}
