/**
 * How a client's `${…}` placeholder was carried into the manifest, where every `${VAR}` is read from the
 * proxy's environment: `env` and `input` placeholders become such variables; `client` ones are the
 * editor's own variables (`${workspaceFolder}`), which mean nothing in a proxy and need a value from its user.
 */
export interface PlaceholderUse {
  kind: 'env' | 'input' | 'client';
  /** As written in the client's file, without `${` and `}`. */
  expression: string;
  /** The manifest variable that replaces it. */
  variable: string;
}

/** Our interpolation's variable names (src/manifest/interpolate.ts). */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Editor variables (VS Code, Cursor) that look like environment names but are not. */
const CLIENT_VARIABLES: Record<string, string> = {
  userHome: 'HOME', // the same thing, and the one every child's base environment has
  workspaceFolder: 'WORKSPACE_FOLDER',
  workspaceFolderBasename: 'WORKSPACE_FOLDER_BASENAME',
  workspaceRoot: 'WORKSPACE_FOLDER',
  cwd: 'WORKSPACE_FOLDER',
};

/**
 * Rewrites the placeholders of every string in `value` (arrays and maps included) into the manifest's
 * syntax, recording each in `uses`. `${VAR}` and `${VAR:-default}` (Claude Code's syntax, and ours) stay
 * as they are; `${env:VAR}` becomes `${VAR}`; `${input:id}` (a prompt in VS Code) `${ID}`; anything else
 * an upper-snake variable. A `${` that never closes is escaped (`$${`) so that it stays literal.
 */
export function rewritePlaceholders(value: unknown, uses: PlaceholderUse[]): unknown {
  if (typeof value === 'string') return rewriteString(value, uses);
  if (Array.isArray(value)) return value.map((item) => rewritePlaceholders(item, uses));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewritePlaceholders(v, uses)]));
  }
  return value;
}

function rewriteString(text: string, uses: PlaceholderUse[]): string {
  let out = '';
  let i = 0;
  for (let open = text.indexOf('${'); open !== -1; open = text.indexOf('${', i)) {
    const close = text.indexOf('}', open + 2);
    out += text.slice(i, open);
    if (close === -1) {
      out += '$${';
      i = open + 2;
      continue;
    }
    const expression = text.slice(open + 2, close);
    out += `\${${rewriteExpression(expression, uses)}}`;
    i = close + 1;
  }
  return out + text.slice(i);
}

function rewriteExpression(expression: string, uses: PlaceholderUse[]): string {
  const record = (kind: PlaceholderUse['kind'], variable: string) => {
    uses.push({ kind, expression, variable });
    return variable;
  };
  const name = expression.split(':-')[0]!;
  if (NAME.test(name)) {
    const editor = CLIENT_VARIABLES[name];
    return editor ? record('client', editor) : expression;
  }
  const colon = expression.indexOf(':');
  const [prefix, rest] =
    colon === -1 ? ['', expression] : [expression.slice(0, colon), expression.slice(colon + 1)];
  if (prefix === 'env') return record('env', NAME.test(rest) ? rest : toVariableName(rest));
  if (prefix === 'input') return record('input', toVariableName(rest));
  return record('client', toVariableName(expression));
}

/**
 * An environment variable name for any text: words (split at punctuation and camelCase humps) joined by
 * `_` in upper case, as `perplexity-key` → `PERPLEXITY_KEY`, `apiToken` → `API_TOKEN`.
 */
export function toVariableName(text: string): string {
  const words = text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean);
  const name = words.join('_').toUpperCase() || 'VALUE';
  return /^[0-9]/.test(name) ? `_${name}` : name;
}
