import { isAscii } from 'node:buffer';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';

/**
 * Large messages keep the bytes they were parsed from, so that relaying one costs a splice rather than
 * another JSON.stringify of a megabyte (the proxy relays each large answer twice: child to proxy to
 * client). Small messages are serialized again: that is cheaper than keeping track of them.
 *
 * Bytes, not the decoded text: a Buffer is written to a pipe or a socket as it is, where a string is first
 * encoded into a copy (and one written first on a response is joined to its headers, another copy). Per
 * 1 MiB echo through a shared child that was three fresh megabytes of memory, each page a fault.
 *
 * This relies on messages never being changed in place: every rewrite in the proxy makes a new object
 * (a spread), and `withId` is the one rewrite that carries the bytes over.
 */
const LARGE = 64 * 1024;
/**
 * Up to this length a message and its framing (a newline, SSE's `data:`) are joined into one string;
 * longer, they are written as pieces, so that a large one is not copied to add a few bytes. Measured on a
 * child's stdin: a piece more costs about 1 µs, the copy about 0.3 ms per MiB; the two meet near 4 KiB.
 */
const JOIN_UP_TO = 4 * 1024;

/** What a message is written as: strings, or bytes that need no encoding. */
export type Piece = string | Buffer;

interface Kept {
  /** The message's bytes, in pieces: an id spliced in is a piece of its own, so the megabyte before it is not copied. */
  readonly pieces: readonly Buffer[];
  /** The text the message was parsed from (not kept for a spliced copy): what withOwnId checks. */
  readonly text?: string;
}
/**
 * Where a message's kept bytes hang: a property no one else sees (a symbol, not enumerable, so neither a
 * spread nor JSON.stringify copies it), which dies with its message. Not a WeakMap: in the running proxy
 * its values outlived their keys until a full collection, and the bytes, outside V8's heap, hasten none.
 * Under the hostile-input test's flood of 200 KB bodies the proxy's RSS grew 24–88 MiB on Node 24 with a
 * WeakMap holding the bytes (28–45 when it held the text), 6–19 MiB with this property.
 */
const KEPT = Symbol('kept');
const keptOf = (message: JSONRPCMessage): Kept | undefined => (message as { [KEPT]?: Kept })[KEPT];
const keep = (message: JSONRPCMessage, value: Kept): void => {
  Object.defineProperty(message, KEPT, { value });
};

/** The bytes that end a line: of a child's stdout, of an SSE field. */
export const NEWLINE = 0x0a;
export const CARRIAGE_RETURN = 0x0d;

/**
 * `message` was parsed from `text`, the UTF-8 decoding of `bytes`, exactly. Text with a line break in it
 * (JSON allows them as whitespace: a pretty-printed body) is not kept: relayed as it is, it would break the
 * child's one-message-per-line framing and the SSE `data:` line.
 */
export function parsedFrom(message: JSONRPCMessage, text: string, bytes: Buffer): void {
  if (bytes.length >= LARGE && bytes.indexOf(NEWLINE) === -1 && bytes.indexOf(CARRIAGE_RETURN) === -1)
    keep(message, { pieces: [bytes], text });
}

/** The message as JSON between `prefix` and `suffix`, as pieces to be written in turn. */
export function framed(prefix: string, message: JSONRPCMessage, suffix: string): Piece[] {
  const pieces: readonly Piece[] = keptOf(message)?.pieces ?? [JSON.stringify(message)];
  const [only] = pieces;
  if (pieces.length === 1 && typeof only === 'string' && only.length <= JOIN_UP_TO) {
    return [`${prefix}${only}${suffix}`];
  }
  return prefix === '' ? [...pieces, suffix] : [prefix, ...pieces, suffix];
}

/** A copy of `message` under another id; its bytes too, when it has some the id can be spliced into. */
export function withId<M extends JSONRPCMessage & { id?: RequestId }>(message: M, id: RequestId): M {
  const copy = { ...message, id };
  const pieces = keptOf(message)?.pieces;
  if (pieces !== undefined && message.id !== undefined) {
    const spliced = spliceId(pieces, message.id, id);
    if (spliced !== undefined) keep(copy, { pieces: spliced });
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
 * Whether a child reads `bytes` (decoded: `text`) as the proxy read them, whatever its JSON parser does with
 * a name given twice or spelt another way: id, method and params once each, plain ASCII, no progress token.
 * Two passes: the ASCII test on the bytes, 0.015 ms per MiB on the bench's machine (counting the text's
 * UTF-8 length took 0.13), and the pattern, 0.3 ms per MiB (with the class beyond ASCII in it, 0.9).
 */
function readsAlike(text: string, bytes: Buffer): boolean {
  // The bytes, not the text: a byte that is not UTF-8 decodes to U+FFFD, which a child may read otherwise.
  if (!isAscii(bytes)) return false;
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
  const asParsed = keptOf(request);
  if (
    request.method === 'tools/call' &&
    asParsed?.text !== undefined &&
    readsAlike(asParsed.text, asParsed.pieces[0]!)
  ) {
    return withId(request, id);
  }
  return { ...request, id };
}

const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;

/**
 * The pieces of a message's bytes with its id replaced, when the id is the top-level object's last member
 * and nothing else follows, which is where both SDKs write it (`{…,"jsonrpc":"2.0","id":7}`); undefined
 * otherwise. In valid JSON that ends `,"id":7}` or `{"id":7}`, the final brace closes the top-level object
 * and the member before it can only be that object's own `id`: a string cannot hold an unescaped quote, and
 * an escaped one is preceded by a backslash, not a comma. In UTF-8 no byte of a longer character is a comma
 * or a brace, so the bytes can be read as the text would be.
 */
export function spliceId(pieces: readonly Buffer[], from: RequestId, to: RequestId): Buffer[] | undefined {
  const tail = Buffer.from(`"id":${JSON.stringify(from)}}`);
  const last = pieces.at(-1)!;
  const cut = last.length - tail.length;
  if (cut < 0 || !last.subarray(cut).equals(tail)) return undefined;
  const previous = pieces.at(-2);
  const before = cut > 0 ? last[cut - 1] : previous?.[previous.length - 1];
  if (before !== COMMA && before !== OPEN_BRACE) return undefined;
  const head = cut > 0 ? [...pieces.slice(0, -1), last.subarray(0, cut)] : pieces.slice(0, -1);
  return [...head, Buffer.from(`"id":${JSON.stringify(to)}}`)];
}
