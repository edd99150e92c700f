import type { Environment } from './interpolate.js';
import { checkManifestValue } from './load.js';
import type { Manifest } from './types.js';

/** The variables that configure the gateway's per-adapter container, and so single-server mode. */
const CONTROL_VARIABLES = ['MCP_COMMAND', 'MCP_ARGS', 'MCP_PROXY_URL'];

/** The name of the one server in single-server mode, served at /mcp and /servers/default/mcp. */
export const SINGLE_SERVER_NAME = 'default';

/** A variable set empty (`MCP_COMMAND=` in a container's environment) is unset, as HOST and PORT are. */
const isSet = (value: string | undefined): value is string => value !== undefined && value !== '';

export function wantsSingleServer(env: Environment): boolean {
  return isSet(env.MCP_COMMAND) || isSet(env.MCP_PROXY_URL);
}

/**
 * The drop-in replacement for the gateway's per-adapter container: MCP_COMMAND (+ MCP_ARGS) or
 * MCP_PROXY_URL describe one server, exactly as an adapter payload's environmentVariables would, and
 * its child gets the whole environment except those three variables, as that container gave it.
 * Pure. Problems come back as `MCP_ARGS: …` lines, since there is no file to point into.
 */
export function singleServerManifest(
  env: Environment,
  cwd: string,
): { manifest?: Manifest; errors: string[] } {
  const control = Object.fromEntries(
    CONTROL_VARIABLES.filter((k) => isSet(env[k])).map((k) => [k, env[k] as string]),
  );
  const { manifest, problems } = checkManifestValue(
    { adapters: [{ name: SINGLE_SERVER_NAME, environmentVariables: control }] },
    cwd,
  );
  const errors = problems
    .filter((p) => p.severity === 'error')
    .map(
      (p) =>
        `${p.path.at(-1) === 'environmentVariables' ? 'environment' : String(p.path.at(-1))}: ${p.message}`,
    );
  if (errors.length > 0) return { errors };
  const inherited = Object.fromEntries(
    Object.entries(env).filter(
      (e): e is [string, string] => e[1] !== undefined && !CONTROL_VARIABLES.includes(e[0]),
    ),
  );
  const servers = manifest.servers.map((s) => (s.kind === 'stdio' ? { ...s, env: inherited } : s));
  return { manifest: { ...manifest, servers }, errors: [] };
}
