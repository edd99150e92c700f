import { isObject, type Candidate, type Conversion } from './types.js';
import { rewritePlaceholders, type PlaceholderUse } from './variables.js';

/** Transport `type`s that name Streamable HTTP across clients (VS Code, Claude Code, Cline). */
const STREAMABLE_HTTP = ['http', 'streamable-http', 'streamableHttp'];
/** The HTTP+SSE transport of the 2024-11-05 protocol: a different wire format from Streamable HTTP. */
const OLD_SSE = 'sse';

const STDIO_FIELDS = ['command', 'args', 'env', 'cwd'];
const REMOTE_FIELDS = ['url', 'headers'];
const COMMON_FIELDS = ['description', 'disabled'];
/** Read to choose the transport or to say why they are not carried, never copied as they are. */
const CONSIDERED_FIELDS = ['type', 'serverUrl', 'envFile'];

/** Claude Desktop's `claude_desktop_config.json` (and the same `mcpServers` shape of Claude Code, Cursor). */
export function fromClaudeDesktop(config: Record<string, unknown>): Conversion {
  return fromServerMap(config.mcpServers as Record<string, unknown>, []);
}

/** VS Code's `.vscode/mcp.json`: `servers`, and `inputs` that VS Code prompts for. */
export function fromVsCode(config: Record<string, unknown>): Conversion {
  const inputs = Array.isArray(config.inputs) ? config.inputs.filter(isObject) : [];
  return fromServerMap(config.servers as Record<string, unknown>, inputs);
}

function fromServerMap(servers: Record<string, unknown>, inputs: Record<string, unknown>[]): Conversion {
  const candidates: Candidate[] = [];
  const notes: string[] = [];
  const uses: PlaceholderUse[] = [];
  for (const [name, entry] of Object.entries(servers)) {
    const converted = fromClientEntry(entry, uses);
    if ('skipped' in converted) notes.push(`server "${name}" skipped: ${converted.skipped}`);
    else candidates.push({ section: 'servers', name, ...converted });
  }
  return { candidates, notes: [...notes, ...placeholderNotes(uses, inputs)] };
}

/** One client entry as a manifest server, or why it cannot be one. */
function fromClientEntry(
  entry: unknown,
  uses: PlaceholderUse[],
): { value: Record<string, unknown>; messages: string[] } | { skipped: string } {
  if (!isObject(entry)) return { skipped: 'not an object' };
  const type = entry.type;
  const url = entry.url ?? entry.serverUrl;
  const remote =
    type === undefined
      ? entry.command === undefined && url !== undefined
      : type === OLD_SSE || STREAMABLE_HTTP.includes(String(type));
  if (type !== undefined && type !== 'stdio' && !remote) {
    return { skipped: `transport "${String(type)}" is not supported (only stdio and Streamable HTTP)` };
  }
  if (type === undefined && entry.command === undefined && url === undefined) {
    return { skipped: 'has neither command nor url' };
  }
  if (remote ? url === undefined : entry.command === undefined) {
    return { skipped: `type "${String(type)}" but no ${remote ? 'url' : 'command'}` };
  }

  const value: Record<string, unknown> = {};
  // In the order people write them: what it is, how to reach it, whether it is on.
  for (const field of ['description', ...(remote ? REMOTE_FIELDS : STDIO_FIELDS), 'disabled']) {
    const v = field === 'url' ? url : entry[field];
    if (v !== undefined) value[field] = rewritePlaceholders(v, uses);
  }

  const messages: string[] = [];
  const unused = (remote ? STDIO_FIELDS : [...REMOTE_FIELDS, 'serverUrl']).filter(
    (f) => entry[f] !== undefined,
  );
  if (unused.length) {
    messages.push(`ignored ${list(unused)}: not used by a ${remote ? 'remote' : 'stdio'} server`);
  }
  const known = [...STDIO_FIELDS, ...REMOTE_FIELDS, ...COMMON_FIELDS, ...CONSIDERED_FIELDS];
  const unknown = Object.keys(entry).filter((f) => !known.includes(f));
  if (unknown.length) messages.push(`ignored ${list(unknown)}: the manifest has no equivalent`);
  if (entry.envFile !== undefined) {
    messages.push(
      `envFile ${JSON.stringify(entry.envFile)} is not carried: the proxy reads no env files; ` +
        'copy its variables into env, secrets as ${VAR} from the proxy environment',
    );
  }
  if (type === OLD_SSE) {
    value.disabled = true;
    messages.push(
      'imported disabled: it uses the old HTTP+SSE transport, and the proxy forwards Streamable HTTP only; ' +
        'if the server also speaks Streamable HTTP (often at /mcp rather than /sse), set that url and remove `disabled`',
    );
  }
  return { value, messages };
}

/** One note per distinct prompt or editor variable: what VS Code supplied, the proxy's environment must. */
function placeholderNotes(uses: PlaceholderUse[], inputs: Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  const notes: string[] = [];
  for (const use of uses) {
    if (use.kind === 'env' || seen.has(use.expression)) continue;
    seen.add(use.expression);
    if (use.kind === 'input') {
      const id = use.expression.slice('input:'.length);
      const input = inputs.find((i) => i.id === id);
      const about = typeof input?.description === 'string' ? ` (${input.description})` : '';
      const secret = input?.password === true ? ', from a secret (VS Code keeps it as a password)' : '';
      notes.push(
        `\${${use.expression}}${about} is a prompt in VS Code; it became \${${use.variable}}: ` +
          `set ${use.variable} in the proxy's environment${secret}`,
      );
    } else {
      notes.push(
        `\${${use.expression}} is the editor's variable; it became \${${use.variable}}, from the proxy's environment`,
      );
    }
  }
  return notes;
}

function list(fields: string[]): string {
  return fields.map((f) => `"${f}"`).join(', ');
}
