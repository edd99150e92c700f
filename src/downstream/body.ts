import type { IncomingMessage } from 'node:http';

/** Default cap on a request body: large enough for 1 MiB tool arguments with room to spare. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** A body read in full: its bytes, and their UTF-8 decoding. */
export type BodyResult =
  { ok: true; text: string; bytes: Buffer } | { ok: false; status: 413 | 400; message: string };

/**
 * Reads a request body up to `limit` bytes. A declared Content-Length over the limit is refused before
 * reading; a body that grows past it while streaming is refused as soon as it does.
 */
export async function readBody(req: IncomingMessage, limit = DEFAULT_MAX_BODY_BYTES): Promise<BodyResult> {
  const tooLarge = { ok: false, status: 413, message: `request body exceeds ${limit} bytes` } as const;
  const unreadable = { ok: false, status: 400, message: 'the request body could not be read' } as const;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // drain, so the connection can answer
    return tooLarge;
  }
  // The client may have left while the request waited (for access checks, say): no event would come.
  if (req.destroyed) return unreadable;
  // Listeners rather than `for await`: leaving an async iterator early destroys the socket, and the
  // client would never see the 413. Past the limit, the rest is read and dropped.
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) settle(tooLarge);
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (settled) return;
      const bytes = Buffer.concat(chunks, size);
      settle({ ok: true, text: bytes.toString('utf8'), bytes });
    });
    req.on('error', () => settle(unreadable));
    req.on('close', () => settle(unreadable)); // after 'end' this settles nothing: the body was read
  });
}
