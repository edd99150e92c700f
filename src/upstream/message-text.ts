import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';

/**
 * Large messages keep the JSON text they were parsed from, so that relaying one costs a splice rather than
 * another JSON.stringify of a megabyte (the proxy relays each large answer twice: child to proxy to
 * client). Small messages are serialized again: that is cheaper than keeping track of them.
 *
 * This relies on messages never being changed in place: every rewrite in the proxy makes a new object
 * (a spread), and `withId` is the one rewrite that carries the text over.
 */
const LARGE = 64 * 1024;

const texts = new WeakMap<JSONRPCMessage, string>();

/**
 * `message` was parsed from `text`, exactly. Text with a line break in it (JSON allows them as whitespace:
 * a pretty-printed body) is not kept: relayed as it is, it would break the child's one-message-per-line
 * framing and the SSE `data:` line.
 */
export function parsedFrom(message: JSONRPCMessage, text: string): void {
  if (text.length >= LARGE && text.indexOf('\n') === -1 && text.indexOf('\r') === -1)
    texts.set(message, text);
}

/** The message as JSON text. */
export function textOf(message: JSONRPCMessage): string {
  return texts.get(message) ?? JSON.stringify(message);
}

/** A copy of `message` under another id; its text too, when it has one the id can be spliced into. */
export function withId<M extends JSONRPCMessage & { id?: RequestId }>(message: M, id: RequestId): M {
  const copy = { ...message, id };
  const text = texts.get(message);
  if (text !== undefined && message.id !== undefined) {
    const spliced = spliceId(text, message.id, id);
    if (spliced !== undefined) texts.set(copy, spliced);
  }
  return copy;
}

const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;

/**
 * `text` with its id replaced, when the id is the top-level object's last member and nothing else follows,
 * which is where both SDKs write it (`{…,"jsonrpc":"2.0","id":7}`); undefined otherwise. In valid JSON that
 * ends `,"id":7}` or `{"id":7}`, the final brace closes the top-level object and the member before it can
 * only be that object's own `id`: a string cannot hold an unescaped quote, and an escaped one is preceded by
 * a backslash, not a comma.
 */
export function spliceId(text: string, from: RequestId, to: RequestId): string | undefined {
  const tail = `"id":${JSON.stringify(from)}}`;
  if (!text.endsWith(tail)) return undefined;
  const before = text.charCodeAt(text.length - tail.length - 1);
  if (before !== COMMA && before !== OPEN_BRACE) return undefined;
  return `${text.slice(0, text.length - tail.length)}"id":${JSON.stringify(to)}}`;
}
