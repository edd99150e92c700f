import { isDeepStrictEqual } from 'node:util';
import { formatPath } from '../manifest/diagnostics.js';
import { entryProblems } from './check.js';
import { detectFormat } from './detect.js';
import { parseJsonc } from './jsonc.js';
import { toServerName, uniqueName } from './names.js';
import { literalSecretMessages } from './secrets.js';
import type { Candidate, ImportedManifest } from './types.js';

export interface SourceFile {
  /** As the user named it, for notes. */
  file: string;
  text: string;
}

export interface ImportResult {
  manifest: ImportedManifest;
  /** What a person should know about the conversion, one line each. */
  notes: string[];
  /** Files that are not a configuration `import` reads: the import as a whole has failed. */
  errors: string[];
}

interface Claim {
  section: Candidate['section'];
  value: Record<string, unknown>;
  subject: string;
  file: string;
}

/**
 * Builds one manifest from client configurations (Claude Desktop, VS Code, gateway adapter payloads),
 * each recognised by its content. Pure: texts in, manifest and notes out. Servers keep the order of the
 * files and of their entries; a name already taken gets a suffix; an entry the loader would refuse is
 * skipped, with the loader's reason.
 */
export function importConfigs(sources: SourceFile[]): ImportResult {
  const manifest: ImportedManifest = { servers: {}, adapters: [] };
  const notes: string[] = [];
  const errors: string[] = [];
  const claims = new Map<string, Claim>();

  const place = (candidate: Candidate, file: string) => {
    const note = (message: string) => notes.push(`${file}: ${message}`);
    const kind = candidate.section === 'servers' ? 'server' : 'adapter';
    const base = toServerName(candidate.name);
    const named = (name: string) =>
      candidate.section === 'adapters' ? { ...candidate.value, name } : candidate.value;

    const problems = entryProblems(candidate.section, base, named(base));
    if (problems.length) {
      note(`${kind} "${candidate.name}" skipped: ${problems.join('; ')}`);
      return;
    }
    const holder = claims.get(base);
    if (holder?.section === candidate.section && isDeepStrictEqual(holder.value, named(base))) {
      note(`${kind} "${candidate.name}" is the same as ${holder.subject} from ${holder.file}: imported once`);
      return;
    }
    const name = uniqueName(base, new Set(claims.keys()));
    const value = named(name);
    const subject =
      candidate.section === 'servers'
        ? formatPath(['servers', name])
        : `${formatPath(['adapters', manifest.adapters.length])} (${name})`;
    if (holder) {
      note(
        `${kind} "${candidate.name}" is ${subject}: "${base}" is already ${holder.subject} from ${holder.file}`,
      );
    } else if (name !== candidate.name) {
      note(`${kind} "${candidate.name}" is ${subject}: names are lowercase DNS labels (a-z, 0-9 and "-")`);
    }
    if (candidate.section === 'servers') manifest.servers[name] = value;
    else manifest.adapters.push(value);
    claims.set(name, { section: candidate.section, value, subject, file });

    const messages = [...candidate.messages, ...literalSecretMessages(candidate.section, name, value)];
    for (const message of messages) note(`${subject}: ${message}`);
  };

  for (const { file, text } of sources) {
    const parsed = parseJsonc(text);
    if ('error' in parsed) {
      errors.push(`${file}: ${parsed.error}`);
      continue;
    }
    const format = detectFormat(parsed.value);
    if (!format) {
      errors.push(
        `${file}: not a configuration import reads: expected "mcpServers" (Claude Desktop), ` +
          '"servers" (VS Code), or Azure mcp-gateway adapter payloads (with "environmentVariables")',
      );
      continue;
    }
    const conversion = format.convert(parsed.value);
    notes.push(`${file}: read as ${format.label}`);
    for (const candidate of conversion.candidates) place(candidate, file);
    notes.push(...conversion.notes.map((n) => `${file}: ${n}`));
  }

  const servers = Object.keys(manifest.servers).length;
  const adapters = manifest.adapters.length;
  notes.push(`imported ${plural(servers, 'server')} and ${plural(adapters, 'adapter')}`);
  const variables = requiredVariables(manifest);
  if (variables.length) {
    notes.push(
      `variables the manifest reads from the proxy's environment, to set where it runs: ${variables.join(', ')}`,
    );
  }
  return { manifest, notes, errors };
}

/** Variables referenced without a default (`${VAR}`, not `${VAR:-x}` nor the escaped `$${VAR}`), sorted. */
function requiredVariables(manifest: ImportedManifest): string[] {
  const text = JSON.stringify(manifest);
  const names = new Set<string>();
  for (const match of text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(match[1]!);
  return [...names].sort();
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
