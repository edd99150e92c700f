import { formatPath, hasErrors, pathStartsWith, type Diagnostic, type PathSegment } from './diagnostics.js';
import { interpolate, type Environment } from './interpolate.js';
import { normalize, type ManifestInput } from './normalize.js';
import type { Problem } from './problem.js';
import { validateAgainstSchema } from './validate.js';
import { parseYaml, type YamlSource } from './yaml-source.js';
import type { Manifest } from './types.js';

/** Larger manifests are refused before parsing: no real fleet needs one, and it bounds the work. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface LoadInput {
  /** Name used in messages, as the user gave it. */
  file: string;
  bytes: Uint8Array | string;
  env: Environment;
  /** Directory that relative paths in the manifest are resolved against. */
  baseDir: string;
}

export interface LoadResult {
  /** Present when there are no errors (warnings may remain). */
  manifest?: Manifest;
  diagnostics: Diagnostic[];
}

/**
 * Checks a manifest value against the schema and turns it into servers: the part of loading that
 * does not care where the value came from (a file, or the environment in single-server mode).
 * `alreadyInvalid` are paths found wrong before (by interpolation): not reported again.
 */
export function checkManifestValue(
  value: unknown,
  baseDir: string,
  alreadyInvalid: PathSegment[][] = [],
): { manifest: Manifest; problems: Problem[] } {
  const schemaProblems = validateAgainstSchema(value).filter(
    (p) => !alreadyInvalid.some((path) => pathStartsWith(p.path, path)),
  );
  const invalid = [
    ...alreadyInvalid,
    ...schemaProblems.filter((p) => p.severity === 'error').map((p) => p.path),
  ];
  const normalized = normalize(value as ManifestInput, {
    baseDir,
    // An entry is skipped when anything inside it, or the entry itself, was found wrong.
    isInvalid: (path) =>
      invalid.some(
        (bad) => pathStartsWith(bad, path) || (bad.length < path.length && pathStartsWith(path, bad)),
      ),
  });
  return { manifest: normalized.manifest, problems: [...schemaProblems, ...normalized.problems] };
}

/**
 * Loads a manifest: bytes → text → YAML with positions → ${VAR} interpolation → JSON Schema → servers.
 * Pure: the same input always gives the same result, and nothing is read, started or printed.
 * Reports every problem it can find in one pass, each with its line and column.
 */
export function loadManifest(input: LoadInput): LoadResult {
  const { file } = input;
  const whole = (message: string): LoadResult => ({
    diagnostics: [{ severity: 'error', file, line: 1, column: 1, path: '', message }],
  });

  const text = decodeText(input.bytes);
  if (typeof text !== 'string') return whole(text.error);
  if (isBlank(text)) return whole('the manifest is empty: declare servers under `servers:` or `adapters:`');

  const parsed = parseYaml(text, file);
  if (!parsed.source) return { diagnostics: parsed.diagnostics };
  const source = parsed.source;
  const value = source.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const what = Array.isArray(value) ? 'a list' : `a single ${value === null ? 'null' : typeof value}`;
    return {
      diagnostics: [
        ...parsed.diagnostics,
        positioned(source, file, {
          severity: 'error',
          path: [],
          message: `the manifest must be a map of keys such as \`servers:\`, not ${what}`,
        }),
      ],
    };
  }

  const interpolated = interpolate(value, input.env);
  // A value whose interpolation failed would only fail the schema again, less clearly.
  const checked = checkManifestValue(
    interpolated.value,
    input.baseDir,
    interpolated.problems.map((p) => p.path),
  );
  const problems = [...interpolated.problems, ...checked.problems];
  const diagnostics = [...parsed.diagnostics, ...problems.map((p) => positioned(source, file, p))];
  return hasErrors(diagnostics) ? { diagnostics } : { manifest: checked.manifest, diagnostics };
}

function positioned(source: YamlSource, file: string, p: Problem): Diagnostic {
  const { line, column } = p.atKey ? source.locateKey(p.path) : source.locate(p.path);
  return { severity: p.severity, file, line, column, path: formatPath(p.path), message: p.message };
}

const TOO_LARGE = `the file is larger than 1 MiB (${MAX_MANIFEST_BYTES} bytes), the most a manifest may be`;

/** UTF-8 text, or a reason it is not text. A leading byte-order mark is dropped. */
function decodeText(bytes: Uint8Array | string): string | { error: string } {
  if (typeof bytes !== 'string') {
    if (bytes.byteLength > MAX_MANIFEST_BYTES) {
      return { error: TOO_LARGE };
    }
    try {
      bytes = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return { error: 'the file is not UTF-8 text; is it a binary file?' };
    }
  } else if (Buffer.byteLength(bytes) > MAX_MANIFEST_BYTES) {
    return { error: TOO_LARGE };
  }
  if (bytes.includes('\0')) return { error: 'the file contains NUL bytes; is it a binary file?' };
  return bytes.replace(/^\uFEFF/, '');
}

/** Nothing but white space and comments. */
function isBlank(text: string): boolean {
  return text.split('\n').every((line) => /^\s*(#.*)?$/.test(line));
}
