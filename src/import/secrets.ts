import { formatPath } from '../manifest/diagnostics.js';
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
 * A note for each literal secret of a manifest entry: in a server's env (named by its own key) and
 * headers (named after the server), or in an adapter payload's environmentVariables.
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
  return fields.flatMap(([field, prefix]) => {
    const map = value[field];
    if (typeof map !== 'object' || map === null) return [];
    return literalSecrets(map as Record<string, unknown>, prefix).map(
      ({ key, suggestion }) =>
        `${formatPath([field, key])} holds a literal value that looks like a secret; it is carried as it ` +
        `is, but consider "${suggestion}" with the value in the proxy's environment`,
    );
  });
}
