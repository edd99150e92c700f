import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';

/**
 * One client session's line to an upstream that speaks JSON-RPC messages (a stdio child, shared or its
 * own). The downstream endpoint owns the HTTP side; a channel only moves messages.
 */
export interface SessionChannel {
  /** A message from the client. */
  send(message: JSONRPCMessage): void;
  /**
   * Set by the endpoint once it has made the session: who hears from the upstream. One object rather than
   * a callback per event, since every session, idle ones too, holds it for its whole life.
   */
  listener?: ChannelListener;
  /** The client's session is over (DELETE, idle timeout, shutdown). Idempotent. */
  close(): void;
}

/** The client's side of a session, as its channel sees it. */
export interface ChannelListener {
  /**
   * A message for the client. `relatedRequestId` names the client request whose response stream should
   * carry it (progress, logs, server-to-client requests during a call).
   */
  deliver(message: JSONRPCMessage, relatedRequestId?: RequestId): void;
  /** The upstream ended this session (its child exited); the client must start over. */
  upstreamClosed(): void;
}

/** Where an endpoint gets a channel for each new client session. */
export interface ChannelSource {
  /** Rejects with an `UnavailableError` when no session can be had now. */
  open(): Promise<SessionChannel>;
}

/** The upstream cannot take a session now; the client may retry after `retryAfterSeconds`. */
export class UnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
