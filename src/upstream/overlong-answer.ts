import type { RequestId } from '@modelcontextprotocol/sdk/types.js';

/** How much of each end of a dropped line is kept to find its id in: ids are short. */
export const OVERLONG_END_BYTES = 256;

const ID = String.raw`(-?\d+|"(?:[^"\\]|\\.)*")`;
/** `{"jsonrpc":"2.0","id":…,"result":` at the start: the order most implementations write. */
const ID_FIRST = new RegExp(
  String.raw`^\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*${ID}\s*,\s*"(?:result|error)"\s*:`,
);
/** `{"result":` at the start: the TypeScript SDK's order, whose id is the last member. */
const RESULT_FIRST = /^\s*\{\s*"(?:result|error)"\s*:/;
/** The last member of the outermost object: one `}` ends it, where a nested object's would need two. */
const ID_LAST = new RegExp(String.raw`,\s*"id"\s*:\s*${ID}\s*\}\s*$`);

/**
 * The id of the response a dropped stdout line was, read from its first and last bytes, or undefined when
 * it does not read as a response. The line itself is too long to parse; without its id, the call it
 * answered would wait for its timeout (ten minutes by default) and then be told the server never answered.
 */
export function idOfOverlongAnswer(head: string, tail: string): RequestId | undefined {
  const match = ID_FIRST.exec(head) ?? (RESULT_FIRST.test(head) ? ID_LAST.exec(tail) : null);
  if (!match) return undefined;
  try {
    return JSON.parse(match[1]!) as RequestId;
  } catch {
    return undefined; // looks like an id but is no JSON (`007`, `"\q"`): no request was given it
  }
}
