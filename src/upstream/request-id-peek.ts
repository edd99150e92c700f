import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export type JsonRpcId = string | number | null;

/** Bodies up to this size are also kept aside as they stream past, so that an error answer can carry their id. */
const PEEK_LIMIT = 64 * 1024;
/** How long an error answer waits for the rest of a small body (to read its id) before answering with id null. */
const PEEK_WAIT_MS = 1000;

/**
 * Keeps a copy of the client's body as it streams to the upstream, never holding it back, as long as it
 * stays small: an error answer can then name the request it answers. Larger bodies (and batches,
 * notifications, anything not a single JSON-RPC request) are answered with id null.
 */
export class RequestIdPeek {
  private chunks: Buffer[] | undefined;
  private size = 0;
  private complete = false;
  private listening = false;
  private settle: (() => void) | undefined;

  /** `whole`: the body, when it was read whole before anything was sent. */
  constructor(
    private readonly req: IncomingMessage,
    whole?: Buffer,
  ) {
    if (whole === undefined) this.chunks = [];
    else {
      this.chunks = whole.length > PEEK_LIMIT ? undefined : [whole];
      this.complete = true;
    }
  }

  /** Starts keeping the body as it streams past, before anything reads it. */
  listen(): void {
    if (this.listening || this.complete) return;
    this.listening = true;
    this.req.on('data', (chunk: Buffer) => {
      if (this.chunks === undefined) return;
      this.size += chunk.length;
      if (this.size > PEEK_LIMIT) this.forget();
      else this.chunks.push(chunk);
    });
    this.req.on('end', () => {
      this.complete = true;
      this.settle?.();
    });
    this.req.on('close', () => this.settle?.());
  }

  /** Once the upstream answers, no error answer will need the id: a long stream should not hold the copy. */
  forget(): void {
    this.chunks = undefined;
    this.settle?.();
  }

  async id(): Promise<JsonRpcId> {
    if (!this.complete && this.chunks !== undefined) {
      // The upstream failed, so nobody else reads the rest of the body; reading it keeps the client's
      // connection usable, and a small body's id may still be in it.
      this.listen();
      const settled = new Promise<void>((resolve) => (this.settle = resolve));
      this.req.resume();
      await Promise.race([settled, sleep(PEEK_WAIT_MS, undefined, { ref: false })]);
    }
    if (this.chunks === undefined || !this.complete) return null;
    return idOf(Buffer.concat(this.chunks));
  }
}

/** The id of a single JSON-RPC request, from its text; null for anything else. */
function idOf(body: Buffer): JsonRpcId {
  try {
    const message: unknown = JSON.parse(body.toString('utf8'));
    if (typeof message !== 'object' || message === null || !('method' in message) || !('id' in message)) {
      return null;
    }
    return typeof message.id === 'string' || typeof message.id === 'number' ? message.id : null;
  } catch {
    return null;
  }
}
