/** The schema's server name: a lowercase DNS label (schema/mcp-proxy.schema.json, `$defs.name`). */
const SERVER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_LENGTH = 63;

/**
 * A valid server name for whatever a client called its server: accents dropped, lowercase, every run of
 * other characters one `-`, trimmed to 63 characters. `My Server (prod)` → `my-server-prod`.
 * A name with nothing usable left becomes `server`.
 */
export function toServerName(name: string): string {
  if (SERVER_NAME.test(name)) return name;
  const label = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-');
  return trimDashes(label.replace(/^-+/, '').slice(0, MAX_LENGTH)) || 'server';
}

/** `name`, or `name-2`, `name-3`… : the first that `taken` does not hold, still at most 63 characters. */
export function uniqueName(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(name)) return name;
  for (let n = 2; ; n++) {
    const suffix = `-${n}`;
    const candidate = `${trimDashes(name.slice(0, MAX_LENGTH - suffix.length))}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

function trimDashes(label: string): string {
  return label.replace(/-+$/, '');
}
