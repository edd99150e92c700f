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

/** `mcp-proxy.yaml:12:7 servers.azure.args: must be array` */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.column}`;
  const tag = d.severity === 'warning' ? 'warning: ' : '';
  return d.path ? `${where} ${tag}${d.path}: ${d.message}` : `${where} ${tag}${d.message}`;
}

/** A GitHub Actions workflow command, shown as an annotation on the file and line in a pull request. */
export function formatGithubAnnotation(d: Diagnostic): string {
  const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const message = d.path ? `${d.path}: ${d.message}` : d.message;
  return `::${d.severity} file=${escapeProperty(d.file)},line=${d.line},col=${d.column}::${escapeData(message)}`;
}

/** Orders diagnostics by position so output reads top to bottom like the file. */
export function byPosition(a: Diagnostic, b: Diagnostic): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column;
}
