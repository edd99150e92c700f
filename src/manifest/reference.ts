/**
 * The manifest reference (docs/manifest.md), written from the JSON Schema's own descriptions so that
 * the documentation cannot say something the schema does not. Pure: schema in, Markdown out.
 */

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  required?: string[];
  minimum?: number;
  maximum?: number;
  format?: string;
  pattern?: string;
};

/** Sections in reading order: where each object of the manifest is described. */
const SECTIONS: { title: string; path: string; intro?: string }[] = [
  { title: 'Top level', path: '#' },
  {
    title: '`servers.<name>`',
    path: '#/$defs/server',
    intro: 'Each entry of `servers:`, served at `/servers/<name>/mcp`.',
  },
  { title: '`adapters[]`', path: '#/$defs/adapter', intro: 'Each item of `adapters:`.' },
  {
    title: '`adapters[].environmentVariables`',
    path: '#/$defs/adapter/properties/environmentVariables',
    intro: 'Any other variable is passed to the server process as it is.',
  },
  { title: '`defaults`', path: '#/properties/defaults' },
  { title: '`listen`', path: '#/properties/listen' },
  { title: '`auth`', path: '#/properties/auth' },
  { title: '`auth.apiKeys[]`', path: '#/$defs/apiKey' },
  { title: '`auth.jwt`', path: '#/$defs/jwt' },
  { title: '`limits`', path: '#/properties/limits' },
];

export function manifestReference(schema: Schema): string {
  const resolve = (s: Schema): Schema => (s.$ref ? { ...resolve(at(schema, s.$ref)), ...withoutRef(s) } : s);
  const lines = [
    '# Manifest reference',
    '',
    '<!-- Generated from schema/mcp-proxy.schema.json by `mcp-proxy schema --markdown`: edit the schema, not this file. -->',
    '',
    schema.description ?? '',
    '',
    resolve(at(schema, '#/$defs/duration')).description ?? '',
  ];
  for (const section of SECTIONS) {
    const object = resolve(at(schema, section.path));
    lines.push('', `## ${section.title}`, '');
    if (section.intro) lines.push(section.intro, '');
    if (section.path !== '#' && object.description) lines.push(object.description, '');
    lines.push('| field | type | description |', '| --- | --- | --- |');
    const required = new Set(object.required ?? []);
    for (const [name, property] of Object.entries(object.properties ?? {})) {
      const p = resolve(property);
      const field = `\`${name}\`${required.has(name) ? ' (required)' : ''}`;
      lines.push(`| ${field} | ${typeOf(p)} | ${cell(p.description ?? '')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function at(schema: Schema, pointer: string): Schema {
  let node: unknown = schema;
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  if (!node || typeof node !== 'object') throw new Error(`no schema at ${pointer}`);
  return node as Schema;
}

function withoutRef(s: Schema): Schema {
  const { $ref: _ref, ...rest } = s;
  return rest;
}

/** A short type for people: `duration`, `shared` \| `session`, list of string, map of string. */
function typeOf(s: Schema): string {
  // Durations are the one number-or-string type, with their own pattern.
  if (s.pattern === '^[0-9]+(ms|s|m|h)?$') return 'duration';
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  const types = ([] as string[]).concat(s.type ?? 'object');
  if (types.includes('array') && types.length === 1) return `list of ${typeOf(s.items ?? {})}`;
  if (
    types.length === 1 &&
    types[0] === 'object' &&
    typeof s.additionalProperties === 'object' &&
    !s.properties
  ) {
    return `map of ${typeOf(s.additionalProperties)}`;
  }
  const range = [
    s.minimum !== undefined && `≥ ${s.minimum}`,
    s.maximum !== undefined && `≤ ${s.maximum}`,
  ].filter(Boolean);
  const base = types.join(' or ');
  return range.length ? `${base} (${range.join(', ')})` : base;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
