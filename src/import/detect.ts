import { fromAdapterPayloads, isAdapterPayload } from './adapters.js';
import { fromClaudeDesktop, fromVsCode } from './clients.js';
import { isObject, type Conversion } from './types.js';

export interface Format {
  /** Said to the user, so they can tell a file was read as what it is. */
  label: string;
  convert(value: unknown): Conversion;
}

/**
 * The formats `import` reads, recognised by their content rather than their file name (configurations
 * are copied, renamed and pasted around). The first that matches wins.
 */
const FORMATS: (Format & { matches(value: unknown): boolean })[] = [
  {
    label: 'a list of Azure mcp-gateway adapter payloads',
    matches: (v) => Array.isArray(v) && v.some(isAdapterPayload),
    convert: (v) => fromAdapterPayloads(v as unknown[]),
  },
  {
    label: 'an Azure mcp-gateway adapter payload',
    matches: isAdapterPayload,
    convert: (v) => fromAdapterPayloads([v]),
  },
  {
    label: 'a Claude Desktop configuration (mcpServers)',
    matches: (v) => isObject(v) && isObject(v.mcpServers),
    convert: (v) => fromClaudeDesktop(v as Record<string, unknown>),
  },
  {
    label: 'a VS Code MCP configuration (servers)',
    matches: (v) => isObject(v) && isObject(v.servers),
    convert: (v) => fromVsCode(v as Record<string, unknown>),
  },
];

export function detectFormat(value: unknown): Format | undefined {
  return FORMATS.find((f) => f.matches(value));
}
