import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { holdWrites } from '../hold-writes.js';
import type { Piece } from '../upstream/message-text.js';
import { jsonBody, jsonHeaders, SSE_KEEP_ALIVE, sseEvent } from './wire.js';

/**
 * Bytes written to a stream and not yet taken by its client, past which it counts as no longer reading
 * and the stream is cut. A shared child cannot be slowed down for one client, so without a bound one
 * client that stops reading would hold everything meant for it in the proxy's memory. The same bound as a
 * child's stdin (child.ts); a message always goes out when less than this is unread, however large it is.
 */
export const MAX_UNREAD_BYTES = 64 * 1024 * 1024;

export interface SseTiming {
  /** How long headers may wait for the first event; 0 sends them at once. */
  headersAfterMs: number;
  /** How often a quiet stream gets an SSE comment, so load balancers do not close it. */
  keepAliveMs: number;
}

/**
 * One answer written straight to Node's response: the answer to a POST (its requests' responses and what
 * relates to them), or a session's GET stream.
 *
 * Headers wait for the first message, for at most `headersAfterMs`: most calls are answered within a
 * millisecond. When that first message is the only response the POST is owed, it goes as plain JSON
 * (`application/json`, one write with its length), which the transport lets the server choose and every
 * client must take; it costs a client a quarter less CPU than an SSE stream's parsing (decision 0027).
 * Anything else (progress first, a batch, a call slower than the wait) is an SSE stream: headers after the
 * wait, so clients and proxies in between see the stream open (undici gives up on headers after 300 s),
 * and a keep-alive comment every `keepAliveMs` after that.
 */
export class SseStream {
  private timer: NodeJS.Timeout | undefined;
  /** Set when the stream was cut for its client not reading: the bytes left unread. */
  cutUnread: number | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: OutgoingHttpHeaders,
    /** Responses still owed on this stream; a GET stream owes none and ends only with its session. */
    private owed: number,
    private readonly timing: SseTiming,
  ) {
    if (timing.headersAfterMs <= 0) this.quiet();
    else this.timer = setTimeout(this.quiet, timing.headersAfterMs).unref();
  }

  /** A message that is not the last one this stream owes. */
  send(message: JSONRPCMessage): void {
    if (this.gone) return;
    if (this.res.writableLength >= MAX_UNREAD_BYTES) {
      this.stop();
      this.cutUnread = this.res.writableLength;
      this.res.destroy();
      return;
    }
    this.writeHeaders();
    const pieces = sseEvent(message);
    if (pieces.length === 1) {
      this.res.write(pieces[0]);
      return;
    }
    // Held, the pieces of a large message leave in one write, as one string would.
    const release = holdWrites(this.res);
    for (const piece of pieces) this.res.write(piece);
    release();
  }

  /** One of the responses this stream owes; the last one ends it. */
  respond(response: JSONRPCMessage): void {
    if (--this.owed > 0) return this.send(response);
    if (this.gone) return;
    this.stop();
    let pieces: Piece[];
    if (this.res.headersSent) pieces = sseEvent(response);
    else {
      // Nothing written yet: this response is the whole answer.
      pieces = jsonBody(response);
      this.res.writeHead(200, jsonHeaders(this.headers, pieces));
    }
    // end() lets go in full: headers, every piece and the end leave in one write.
    holdWrites(this.res);
    for (const piece of pieces.slice(0, -1)) this.res.write(piece);
    this.res.end(pieces.at(-1));
  }

  /** One response this stream owed will not come (the client cancelled its request); the last ends it. */
  forgo(): void {
    if (--this.owed <= 0) this.end();
  }

  /** Ends the stream with what has been sent (the session is over). */
  end(): void {
    this.stop();
    if (this.gone) return;
    this.writeHeaders();
    this.res.end();
  }

  /** The client went away: nothing more will be written. */
  stop(): void {
    clearTimeout(this.timer);
  }

  /** Nothing more can be written: ended, or cut (its 'close' may not have come yet). */
  get gone(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** Whether the headers were still to be written (they are now, waiting for the next write). */
  private writeHeaders(): boolean {
    if (this.res.headersSent) return false;
    this.res.writeHead(200, this.headers);
    return true;
  }

  private readonly quiet = (): void => {
    if (this.gone) return;
    if (this.writeHeaders()) this.res.flushHeaders();
    else this.res.write(SSE_KEEP_ALIVE);
    this.timer = setTimeout(this.quiet, this.timing.keepAliveMs).unref();
  };
}
