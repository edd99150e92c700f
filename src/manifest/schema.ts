import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the manifest's JSON Schema lives: the one source of truth for editors, CI and the runtime. */
export const schemaPath = fileURLToPath(new URL('../../../schema/mcp-proxy.schema.json', import.meta.url));

/** The schema's text, exactly as shipped (what `mcp-proxy schema` prints). */
export const schemaText: string = readFileSync(schemaPath, 'utf8');

export const manifestSchema: Record<string, unknown> = JSON.parse(schemaText);
