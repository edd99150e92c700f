/**
 * A problem found in a manifest, positioned in its source so a person can go straight to it.
 * Every stage of loading reports these instead of throwing, so one run shows every problem at once.
 */
export interface Diagnostic {
  severity: 'error' | 'warning';
  file: string;
  /** 1-based; 1 when the problem is the file as a whole. */
  line: number;
  /** 1-based. */
  column: number;
  /** Where in the manifest, as `servers.azure.args` or `adapters[0].name`; empty for the whole file. */
  path: string;
  message: string;
}

export type PathSegment = string | number;

/** Renders a path as people write it: `servers.azure.env.TOKEN`, `adapters[2].name`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Whether `path` is `prefix` or lies under it. */
export function pathStartsWith(path: readonly PathSegment[], prefix: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => segment === path[i]);
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/**
 * Control characters (C0, DEL, C1), line and paragraph separators and bidirectional overrides: in a key or
 * a file name they would start a line of their own (a GitHub workflow command such as `::error …`), move a
 * terminal's cursor or reorder what is shown.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every unprintable character written as an escape (`\n`, `\u001b`): one line, as it is. */
export function escapeControl(text: string): string {
  return text.replace(
    UNPRINTABLE,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Text from the manifest (a key, a name) as a message quotes it: in double quotes, escaped. */
export function quoted(text: string): string {
  return escapeControl(JSON.stringify(text));
}

/** `mcp-proxy.yaml:12:7 servers.azure.args: must be array` */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.column}`;
  const tag = d.severity === 'warning' ? 'warning: ' : '';
  return escapeControl(d.path ? `${where} ${tag}${d.path}: ${d.message}` : `${where} ${tag}${d.message}`);
}

/** A GitHub Actions workflow command, shown as an annotation on the file and line in a pull request. */
export function formatGithubAnnotation(d: Diagnostic): string {
  return githubCommand(
    d.severity,
    { file: d.file, line: d.line, col: d.column },
    d.path ? `${d.path}: ${d.message}` : d.message,
  );
}

/** `::error file=…::message`, escaped as the runner reads it, and control characters too. */
export function githubCommand(
  severity: Diagnostic['severity'],
  properties: Record<string, string | number>,
  message: string,
): string {
  const escapeData = (s: string) =>
    escapeControl(s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A'));
  const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const list = Object.entries(properties).map(([k, v]) => `${k}=${escapeProperty(String(v))}`);
  return `::${severity} ${list.join(',')}::${escapeData(message)}`;
}

/** Orders diagnostics by position so output reads top to bottom like the file. */
export function byPosition(a: Diagnostic, b: Diagnostic): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column;
}
