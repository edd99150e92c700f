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
/**
 * Up to this length a message and its framing (a newline, SSE's `data:`) are joined into one string;
 * longer, they are written as pieces, so that a large one is not copied to add a few bytes. Measured on a
 * child's stdin: a piece more costs about 1 µs, the copy about 0.3 ms per MiB; the two meet near 4 KiB.
 */
const JOIN_UP_TO = 4 * 1024;

/** Kept texts, in pieces: an id spliced in is a piece of its own, so the megabyte before it is not copied. */
const texts = new WeakMap<JSONRPCMessage, readonly string[]>();

/**
 * `message` was parsed from `text`, exactly. Text with a line break in it (JSON allows them as whitespace:
 * a pretty-printed body) is not kept: relayed as it is, it would break the child's one-message-per-line
 * framing and the SSE `data:` line.
 */
export function parsedFrom(message: JSONRPCMessage, text: string): void {
  if (text.length >= LARGE && text.indexOf('\n') === -1 && text.indexOf('\r') === -1)
    texts.set(message, [text]);
}

/** The message as JSON text between `prefix` and `suffix`, as pieces to be written in turn. */
export function framed(prefix: string, message: JSONRPCMessage, suffix: string): string[] {
  const pieces = texts.get(message) ?? [JSON.stringify(message)];
  if (pieces.length === 1 && pieces[0]!.length <= JOIN_UP_TO) return [`${prefix}${pieces[0]}${suffix}`];
  return prefix === '' ? [...pieces, suffix] : [prefix, ...pieces, suffix];
}

/** A copy of `message` under another id; its text too, when it has one the id can be spliced into. */
export function withId<M extends JSONRPCMessage & { id?: RequestId }>(message: M, id: RequestId): M {
  const copy = { ...message, id };
  const pieces = texts.get(message);
  if (pieces !== undefined && message.id !== undefined) {
    const spliced = spliceId(pieces, message.id, id);
    if (spliced !== undefined) texts.set(copy, spliced);
  }
  return copy;
}

/**
 * What makes a client's text unsafe to hand to a shared child as it is (see withOwnId): the members named
 * id, method and params (counted: each must appear once, in any letter case, since Go's encoding/json
 * matches names case-insensitively), a progress token in any spelling (`progress_token` is the Python
 * SDK's), any \u escape (with which a name can be spelt without its letters), and any character beyond
 * ASCII (with which some parsers' case folding spells one: .NET's invariant ignore-case takes `ı` for `I`),
 * which readsAlike finds apart: in the same pattern it tripled the pattern's time.
 */
const RISKY = /"(?:id|method|params)"|progress[-_]*token|\\u/gi;

/**
 * Whether a child reads `text` as the proxy read it, whatever its JSON parser does with a name given twice
 * or spelt another way: id, method and params once each, plain ASCII, no progress token. Two passes, about
 * 0.45 ms per MiB together on the bench's machine (the one pattern with the class beyond ASCII took 0.9).
 */
function readsAlike(text: string): boolean {
  // Every character beyond ASCII takes two or more bytes in UTF-8 (a lone surrogate three): the lengths are
  // equal only for plain ASCII. Counted natively, without a pattern.
  if (Buffer.byteLength(text, 'utf8') !== text.length) return false;
  RISKY.lastIndex = 0;
  const named = new Set<string>();
  for (let match = RISKY.exec(text); match !== null; match = RISKY.exec(text)) {
    const name = match[0].toLowerCase();
    if (!name.startsWith('"')) return false; // a progress token or an escape
    if (named.has(name)) return false;
    named.add(name);
  }
  return named.size === 3;
}

/**
 * A copy of a client's `request` under the proxy's own id, for a child that other sessions share. The
 * client's text goes on, with the id spliced in, only for a tools/call whose text reads alike to any
 * parser (readsAlike). Otherwise a child whose parser keeps the first of two members where JSON.parse keeps
 * the last could answer under an id the client chose (another session's), take a progress token the proxy
 * never rewrote (and send another session progress), see another method than the proxy acted on (an
 * unsubscribe the proxy counted as a call), or run another tool than the proxy saw. Anything else is
 * serialized again (about 1.5 ms per MiB), after the multiplexer has refused the members a child could read
 * in place of the ones it rewrites (confusable-names.ts).
 */
export function withOwnId<M extends JSONRPCMessage & { id?: RequestId; method?: string }>(
  request: M,
  id: RequestId,
): M {
  const pieces = texts.get(request);
  if (request.method === 'tools/call' && pieces?.length === 1 && readsAlike(pieces[0]!)) {
    return withId(request, id);
  }
  return { ...request, id };
}

const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;

/**
 * The pieces of a text with its id replaced, when the id is the top-level object's last member and nothing
 * else follows, which is where both SDKs write it (`{…,"jsonrpc":"2.0","id":7}`); undefined otherwise. In
 * valid JSON that ends `,"id":7}` or `{"id":7}`, the final brace closes the top-level object and the member
 * before it can only be that object's own `id`: a string cannot hold an unescaped quote, and an escaped one
 * is preceded by a backslash, not a comma.
 */
export function spliceId(pieces: readonly string[], from: RequestId, to: RequestId): string[] | undefined {
  const tail = `"id":${JSON.stringify(from)}}`;
  const last = pieces.at(-1)!;
  if (!last.endsWith(tail)) return undefined;
  const cut = last.length - tail.length;
  const previous = pieces.at(-2);
  const before = cut > 0 ? last.charCodeAt(cut - 1) : previous?.charCodeAt(previous.length - 1);
  if (before !== COMMA && before !== OPEN_BRACE) return undefined;
  const head = cut > 0 ? [...pieces.slice(0, -1), last.slice(0, cut)] : pieces.slice(0, -1);
  return [...head, `"id":${JSON.stringify(to)}}`];
}
