import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { quoted, type Diagnostic, type PathSegment } from './diagnostics.js';

export interface Position {
  line: number;
  column: number;
}

/** A parsed YAML document that can say where any path of its value was written. */
export interface YamlSource {
  value: unknown;
  /** Position of the value at `path`, or of its nearest ancestor that exists in the source. */
  locate(path: readonly PathSegment[]): Position;
  /** Position of the key that introduces `path` (falls back to `locate`): where an unknown key is named. */
  locateKey(path: readonly PathSegment[]): Position;
}

/** Aliases may expand to at most this many nodes: a billion-laughs document is refused, not expanded. */
const MAX_ALIAS_COUNT = 100;

const START: Position = { line: 1, column: 1 };

/**
 * Parses YAML (a superset of JSON, so JSON manifests load too) keeping source positions.
 * Pure: text in, value and diagnostics out. Duplicate keys, tab indentation and every syntax error
 * are reported with their line and column.
 */
export function parseYaml(text: string, file: string): { source?: YamlSource; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, merge: true, prettyErrors: false });
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const diagnostics: Diagnostic[] = [];
  for (const e of doc.errors) {
    const message =
      e.code === 'DUPLICATE_KEY'
        ? `duplicate key ${quoted(keyTextAt(text, e.pos[0]))}: a key may appear only once in a map`
        : e.code === 'MULTIPLE_DOCS'
          ? 'the file holds more than one YAML document (a `---` line); the manifest is one document'
          : yamlMessage(e.message);
    diagnostics.push({ severity: 'error', file, ...at(e.pos[0]), path: '', message });
  }
  for (const w of doc.warnings) {
    diagnostics.push({
      severity: 'warning',
      file,
      ...at(w.pos[0]),
      path: '',
      message: yamlMessage(w.message),
    });
  }
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // The yaml library throws a ReferenceError for alias expansion beyond maxAliasCount.
    const message =
      error instanceof ReferenceError && /alias/i.test(error.message)
        ? `aliases expand to too many nodes (more than ${MAX_ALIAS_COUNT}); refusing to expand them`
        : `cannot read the document: ${(error as Error).message}`;
    diagnostics.push({ severity: 'error', file, ...START, path: '', message });
    return { diagnostics };
  }

  const nodeAt = (path: readonly PathSegment[]) => findNode(doc, path);
  const source: YamlSource = {
    value,
    locate(path) {
      const { node } = nodeAt(path);
      return node?.range ? at(node.range[0]) : START;
    },
    locateKey(path) {
      const found = nodeAt(path);
      if (found.exact && found.key?.range) return at(found.key.range[0]);
      return found.node?.range ? at(found.node.range[0]) : START;
    },
  };
  return { source, diagnostics };
}

/** The text of a plain or quoted key starting at `offset`, for messages (the library's error range is one character). */
function keyTextAt(text: string, offset: number): string {
  const rest = text.slice(offset);
  const quoted = /^(["'])(.*?)\1/.exec(rest);
  return quoted ? quoted[2]! : (/^[^:\n]*/.exec(rest)?.[0] ?? '').trim();
}

/** The library's messages end with " at line N, column M"; ours put the position in front. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '').replace(/^./, (c) => c.toLowerCase());
}

/**
 * Walks the document's nodes along `path`. Returns the deepest node reached, the key node that led to
 * it, and whether the whole path was found (merged keys and expanded aliases may not be, in which case
 * the nearest ancestor is the best position there is).
 */
function findNode(doc: Document, path: readonly PathSegment[]): { node?: Node; key?: Node; exact: boolean } {
  let node = doc.contents as Node | null;
  let key: Node | undefined;
  for (const segment of path) {
    if (node && isAlias(node)) node = (node.resolve(doc) as Node | undefined) ?? null;
    if (node && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return { node, key, exact: false };
      key = pair.key as Node;
      // A key with no value (`command:`) has no value node; point at the key.
      node = (pair.value as Node | null) ?? key;
    } else if (node && isSeq(node) && typeof segment === 'number' && node.items[segment]) {
      key = undefined;
      node = node.items[segment] as Node;
    } else {
      return { node: node ?? undefined, key, exact: false };
    }
  }
  return { node: node ?? undefined, key, exact: true };
}
