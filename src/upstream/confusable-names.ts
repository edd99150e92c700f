/**
 * Member names that a child's JSON parser may read as one the proxy rewrites for a shared child (a request's
 * `_meta` and its `progressToken`, a cancellation's `requestId`). The proxy rewrites the exact name; a
 * child that matches names case-insensitively (Go's encoding/json), ignoring `-` and `_` (Go's json/v2 with
 * that option), by a snake_case alias (the Python SDK's `progress_token`) or by Unicode case folding
 * (`ı` for `I`) would read the other member, unrewritten, and could send progress to another session or
 * cancel another session's call.
 */

const fold = (name: string): string => name.toLowerCase().replace(/[-_]/g, '');
const BEYOND_ASCII = /[^\x00-\x7f]/;

/** A member of `object`, other than `exact`, that some parser may take for `exact`; none if there is none. */
export function confusableWith(object: unknown, exact: string): string | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const folded = fold(exact);
  for (const name of Object.keys(object)) {
    if (name !== exact && (fold(name) === folded || BEYOND_ASCII.test(name))) return name;
  }
  return undefined;
}
