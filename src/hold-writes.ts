import type { ServerResponse } from 'node:http';

/**
 * Holds what is written to a response until the returned function is called, so that the pieces written in
 * between (headers, chunks, the end) leave in one write. It corks the response's socket, not the response:
 * Node 24's `OutgoingMessage.cork()` keeps chunked writes in a buffer of its own, which `end()` does not
 * flush before it writes the last chunk, so a body written and ended while the response is corked goes out
 * after its own terminator (seen on 24.21: `3 abc 0 2 de`). On Node 20 the response's cork was the socket's.
 * `end()` lets the socket go in full; the returned function is then a no-op.
 */
export function holdWrites(res: ServerResponse): () => void {
  const { socket } = res;
  socket?.cork();
  return () => socket?.uncork();
}
