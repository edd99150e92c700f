import { dirname, resolve } from 'node:path';
import {
  byPosition,
  escapeControl,
  formatDiagnostic,
  formatGithubAnnotation,
  githubCommand,
  hasErrors,
  type Diagnostic,
} from '../manifest/diagnostics.js';
import type { Environment } from '../manifest/interpolate.js';
import { loadManifest } from '../manifest/load.js';
import { readManifestBytes, readStreamBytes, STDIN_NAME } from '../manifest/read.js';

export type OutputFormat = 'text' | 'json' | 'github';

export const EXIT_VALID = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

interface FileReport {
  file: string;
  valid: boolean;
  /** Set when the file could not be read at all (exit 2, not 1). */
  unreadable?: string;
  servers: string[];
  diagnostics: Diagnostic[];
}

/**
 * `mcp-proxy validate [FILE...]`: checks manifests as `serve` would load them, starting nothing. `-` is
 * standard input.
 */
export async function validateCommand(
  files: string[],
  format: OutputFormat,
  env: Environment,
  out: (line: string) => void,
): Promise<number> {
  const reports: FileReport[] = [];
  for (const given of files) {
    const stdin = given === '-';
    const file = stdin ? STDIN_NAME : given;
    const read = stdin ? await readStreamBytes() : await readManifestBytes(file);
    if ('unreadable' in read) {
      reports.push({ file, valid: false, unreadable: read.unreadable, servers: [], diagnostics: [] });
      continue;
    }
    const result = loadManifest({
      file,
      bytes: read.bytes,
      env,
      baseDir: stdin ? process.cwd() : dirname(resolve(file)),
    });
    reports.push({
      file,
      valid: !hasErrors(result.diagnostics),
      servers: result.manifest?.servers.map((s) => s.name) ?? [],
      diagnostics: [...result.diagnostics].sort(byPosition),
    });
  }

  if (format === 'json') out(JSON.stringify({ files: reports }, null, 2));
  else for (const report of reports) printReport(report, format, out);

  if (reports.some((r) => r.unreadable)) return EXIT_USAGE;
  return reports.every((r) => r.valid) ? EXIT_VALID : EXIT_INVALID;
}

function printReport(report: FileReport, format: 'text' | 'github', out: (line: string) => void): void {
  if (report.unreadable) {
    out(
      format === 'github'
        ? githubCommand('error', { file: report.file }, report.unreadable)
        : escapeControl(`error: ${report.unreadable}`),
    );
    return;
  }
  for (const d of report.diagnostics)
    out(format === 'github' ? formatGithubAnnotation(d) : formatDiagnostic(d));
  const errors = report.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = report.diagnostics.length - errors;
  const noted = warnings ? `, ${plural(warnings, 'warning')}` : '';
  out(
    escapeControl(
      report.valid
        ? `${report.file}: valid, ${plural(report.servers.length, 'server')}${noted}`
        : `${report.file}: invalid, ${plural(errors, 'error')}${noted}`,
    ),
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
