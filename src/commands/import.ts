import { basename } from 'node:path';
import { escapeControl, formatDiagnostic } from '../manifest/diagnostics.js';
import { MAX_MANIFEST_BYTES } from '../manifest/load.js';
import { readManifestBytes } from '../manifest/read.js';
import { checkManifestText } from '../import/check.js';
import { importConfigs, type SourceFile } from '../import/import-configs.js';
import { renderManifest, type ManifestFormat } from '../import/render.js';
import { EXIT_INVALID, EXIT_USAGE, EXIT_VALID } from './validate.js';

export interface ImportOutput {
  /** The manifest, and nothing else: it is meant to be redirected to a file. */
  out(text: string): void;
  /** Notes and errors, one per line. */
  err(line: string): void;
}

/**
 * `mcp-proxy import FILE…`: prints one manifest built from client configurations. The manifest is printed
 * only when every file was read and the result loads with the project's own loader; otherwise nothing is,
 * so `import … > mcp-proxy.yaml` never leaves a half-made file that looks finished.
 */
export async function importCommand(
  files: string[],
  format: ManifestFormat,
  printed: ImportOutput,
): Promise<number> {
  // Names and paths come from the files read: a newline in one must not forge a line of its own (a CI
  // annotation, a terminal escape), as validate's output does not either.
  const output = { out: printed.out, err: (line: string) => printed.err(escapeControl(line)) };
  const sources: SourceFile[] = [];
  const unreadable: string[] = [];
  const undecodable: string[] = [];
  for (const file of files) {
    const read = await readManifestBytes(file);
    if ('unreadable' in read) {
      unreadable.push(read.unreadable);
      continue;
    }
    const text = decode(read.bytes);
    if (typeof text === 'string') sources.push({ file, text });
    else undecodable.push(`${file}: ${text.error}`);
  }
  if (unreadable.length) {
    for (const reason of unreadable) output.err(`error: ${reason}`);
    return EXIT_USAGE;
  }

  const result = importConfigs(sources);
  for (const note of result.notes) output.err(`note: ${note}`);
  const errors = [...undecodable, ...result.errors];
  const { servers, adapters } = result.manifest;
  if (!errors.length && Object.keys(servers).length + adapters.length === 0) {
    errors.push('nothing to import: no file declares a server the manifest can take');
  }
  if (errors.length) {
    for (const error of errors) output.err(`error: ${error}`);
    return EXIT_INVALID;
  }

  const text = renderManifest(
    result.manifest,
    format,
    files.map((f) => basename(f)),
  );
  const check = checkManifestText(text);
  if (check.errors.length) {
    output.err('error: the imported manifest does not load, so it is not printed (a bug in import):');
    for (const d of check.errors) output.err(`error: ${formatDiagnostic(d)}`);
    return EXIT_INVALID;
  }
  // The loader's warnings are what `validate` will say of this file: better read now than then. The same
  // warning on many entries (every adapter's imageName) is one line.
  const where = new Map<string, string[]>();
  for (const d of check.warnings) where.set(d.message, [...(where.get(d.message) ?? []), d.path]);
  for (const [message, paths] of where) output.err(`note: when loaded: ${message} (${paths.join(', ')})`);
  output.out(text);
  return EXIT_VALID;
}

/** UTF-8 text within the loader's size limit: client configurations are small JSON files. */
function decode(bytes: Uint8Array): string | { error: string } {
  if (bytes.byteLength > MAX_MANIFEST_BYTES)
    return { error: 'larger than 1 MiB, too large for a configuration' };
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { error: 'not UTF-8 text; is it a binary file?' };
  }
}
