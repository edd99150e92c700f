import type { OutgoingHttpHeaders } from 'node:http';

/** How the request's body is framed on the way to the upstream. */
export type BodyFraming =
  /** `Content-Length`: a body read whole, or one the client declared the length of. */
  | { length: number }
  /** `Transfer-Encoding: chunked`: a body streamed without a declared length. */
  | 'chunked'
  /** No body, and no framing header: a GET, say. */
  | 'none';

/**
 * The head of a request to the upstream, ready to write: request line, header fields, blank line.
 * `fields` must hold valid names and values (Node's parser read the client's; the configured ones are
 * checked once, when the server is set up) and no framing field of their own: `framing` decides it.
 */
export function requestHead(
  method: string,
  target: string,
  fields: OutgoingHttpHeaders,
  framing: BodyFraming,
): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const name in fields) {
    const value = fields[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const each of value) head += `${name}: ${each}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  if (framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
  else if (framing !== 'none') head += `content-length: ${framing.length}\r\n`;
  return head + '\r\n';
}

/** One piece of a chunked body. */
export function chunkHead(length: number): string {
  return `${length.toString(16)}\r\n`;
}

/** The end of a chunked body: the last chunk, no trailers. */
export const LAST_CHUNK = '0\r\n\r\n';
