import { formatPath, type PathSegment } from '../manifest/diagnostics.js';
import { splitShellWords } from '../manifest/shell-words.js';
import type { Candidate } from './types.js';
import { toVariableName } from './variables.js';

/**
 * Names whose last word says "secret": `GITHUB_PERSONAL_ACCESS_TOKEN`, `X-Api-Key`, `DB_PASSWORD`,
 * `Authorization`. Only the last word counts, so that `AZURE_TOKEN_CREDENTIALS` (a credential *type*,
 * such as WorkloadIdentityCredential), `KEY_VAULT_NAME`, `MAX_TOKENS` and `AZURE_FEDERATED_TOKEN_FILE`
 * (a path) are not taken for secrets.
 */
const SECRET_WORD = /(key|token|secret|password|passwd|authorization|cookie)$|^(pat|pwd)$/i;

/** A literal: no `${VAR}` in it. Booleans and numbers are switches, not secrets. */
function isLiteralSecretValue(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.trim() !== '' &&
    !value.includes('${') &&
    !/^(true|false|\d+)$/i.test(value)
  );
}

function looksSecret(name: string): boolean {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').split(/[^A-Za-z0-9]+/);
  return SECRET_WORD.test(words.filter(Boolean).at(-1) ?? '');
}

/**
 * The entries of an env or headers map that hold what looks like a literal secret, each with the `${VAR}`
 * form to suggest instead. `prefix` names the variable for headers, whose names are not variable names
 * and may repeat across servers (`X-Api-Key` of server `search` → `${SEARCH_X_API_KEY}`); an env entry
 * keeps its own name. An HTTP auth scheme (`Bearer …`) stays in front of the variable.
 */
export function literalSecrets(
  map: Record<string, unknown>,
  prefix?: string,
): { key: string; suggestion: string }[] {
  return Object.entries(map)
    .filter((entry): entry is [string, string] => looksSecret(entry[0]) && isLiteralSecretValue(entry[1]))
    .map(([key, value]) => {
      const variable = toVariableName(prefix === undefined ? key : `${prefix}_${key}`);
      const scheme = /^(Bearer|Basic|Token)\s+/i.exec(value)?.[0] ?? '';
      return { key, suggestion: `${scheme}\${${variable}}` };
    });
}

/**
 * Where arguments hold what looks like a literal secret: the value of a flag whose name says so, given as
 * `--api-key=VALUE` or as the next argument. Indexes into `args`.
 */
export function secretArguments(args: readonly unknown[]): number[] {
  const found: number[] = [];
  args.forEach((arg, i) => {
    if (typeof arg !== 'string' || !arg.startsWith('-')) return;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (!looksSecret(flag)) return;
    if (inline !== undefined) {
      if (isLiteralSecretValue(inline)) found.push(i);
    } else if (isLiteralSecretValue(args[i + 1]) && !(args[i + 1] as string).startsWith('-')) {
      found.push(i + 1);
    }
  });
  return found;
}

/** Whether a URL carries what looks like a secret: a user or password, or a query parameter named so. */
export function urlHoldsSecret(text: unknown): boolean {
  if (typeof text !== 'string' || text.includes('${')) return false;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return url.username !== '' || url.password !== '' || [...url.searchParams.keys()].some(looksSecret);
}

const INLINE_ADVICE =
  'looks like it holds a secret; it is carried as it is, but consider a ${VARIABLE} there with the value in ' +
  "the proxy's environment";

/** Notes on secrets written into arguments or a URL, which have no name of their own to become a variable. */
function inlineSecretMessages(section: Candidate['section'], value: Record<string, unknown>): string[] {
  const at = (path: PathSegment[]) => `${formatPath(path)} ${INLINE_ADVICE}`;
  if (section === 'servers') {
    const args = Array.isArray(value.args) ? value.args : [];
    return [
      ...secretArguments(args).map((i) => at(['args', i])),
      ...(urlHoldsSecret(value.url) ? [at(['url'])] : []),
    ];
  }
  const variables = (value.environmentVariables ?? {}) as Record<string, unknown>;
  const split = typeof variables.MCP_ARGS === 'string' ? splitShellWords(variables.MCP_ARGS) : undefined;
  const words = split && 'words' in split ? split.words : [];
  return [
    ...(secretArguments(words).length > 0 ? [at(['environmentVariables', 'MCP_ARGS'])] : []),
    ...(urlHoldsSecret(variables.MCP_PROXY_URL) ? [at(['environmentVariables', 'MCP_PROXY_URL'])] : []),
  ];
}

/**
 * A note for each literal secret of a manifest entry: in a server's env (named by its own key) and
 * headers (named after the server), or in an adapter payload's environmentVariables; and in arguments and
 * URLs.
 */
export function literalSecretMessages(
  section: Candidate['section'],
  name: string,
  value: Record<string, unknown>,
): string[] {
  const fields: [string, string | undefined][] =
    section === 'servers'
      ? [
          ['env', undefined],
          ['headers', name],
        ]
      : [['environmentVariables', undefined]];
  const named = fields.flatMap(([field, prefix]) => {
    const map = value[field];
    if (typeof map !== 'object' || map === null) return [];
    return literalSecrets(map as Record<string, unknown>, prefix).map(
      ({ key, suggestion }) =>
        `${formatPath([field, key])} holds a literal value that looks like a secret; it is carried as it ` +
        `is, but consider "${suggestion}" with the value in the proxy's environment`,
    );
  });
  return [...named, ...inlineSecretMessages(section, value)];
}
