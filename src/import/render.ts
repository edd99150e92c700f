import { Document, isPair, isScalar, isSeq, visit, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import type { ImportedManifest } from './types.js';

export type ManifestFormat = 'yaml' | 'json';

/**
 * Where the schema is, relative to the manifest, as the README and examples/ write it: editors then
 * check and complete the file once `mcp-proxy schema > schema/mcp-proxy.schema.json` has put it there.
 */
const SCHEMA_REFERENCE = './schema/mcp-proxy.schema.json';

/** Arguments that fit on one line are written `[-y, pkg]`, as people write them; longer ones one per line. */
const MAX_FLOW_ARGS_LENGTH = 80;

/** The manifest as text: YAML with the editor's schema comment, or JSON with a `$schema` key. */
export function renderManifest(manifest: ImportedManifest, format: ManifestFormat, from: string[]): string {
  // An empty section is left out: `adapters: []` would only be noise.
  const sections = {
    ...(Object.keys(manifest.servers).length && { servers: manifest.servers }),
    ...(manifest.adapters.length && { adapters: manifest.adapters }),
  };
  if (format === 'json') return `${JSON.stringify({ $schema: SCHEMA_REFERENCE, ...sections }, null, 2)}\n`;

  const doc = new Document(sections);
  doc.commentBefore =
    ` yaml-language-server: $schema=${SCHEMA_REFERENCE}\n` +
    ` Written by \`mcp-proxy import\` from ${from.join(', ')}.`;
  visit(doc, {
    Pair(_, pair) {
      if (isSeq(pair.value) && isScalar(pair.key) && pair.key.value === 'args') {
        pair.value.flow = JSON.stringify(pair.value.toJSON()).length <= MAX_FLOW_ARGS_LENGTH;
      }
    },
  });
  // A blank line between sections and between their entries, as a person would lay the file out.
  const root = doc.contents as YAMLMap<Scalar, YAMLMap | YAMLSeq>;
  spaceOut(root.items);
  for (const section of root.items) spaceOut(section.value!.items);
  return doc.toString({ singleQuote: true, lineWidth: 0, flowCollectionPadding: false });
}

function spaceOut(items: unknown[]): void {
  items.slice(1).forEach((item) => {
    const node = (isPair(item) ? item.key : item) as { spaceBefore?: boolean };
    node.spaceBefore = true;
  });
}
