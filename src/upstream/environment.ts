/**
 * What a child's environment is made of. The proxy's own environment holds its secrets (manifest
 * interpolation values, API keys, cloud credentials), so a child sees only what is listed here and what
 * its manifest entry declares; anything else must be added to the server's `env` on purpose.
 */

/**
 * Copied from the proxy's environment when set. An entry ending in `*` names a prefix.
 */
export const BASE_ENVIRONMENT = [
  // Finding executables (`npx`, `uvx`, interpreters) and the user's files, as a login would set them.
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TERM',
  // Locale and time zone: text encoding of stdio and file names, formatting of dates in tool results.
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  // Where temporary files go; a read-only root file system usually points these at a writable volume.
  'TMPDIR',
  'TEMP',
  'TMP',
  // Outbound network: a corporate proxy and a private CA must reach the child or its requests fail.
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  // Caches and config of the launchers (`npx -y`, `uvx`): without them every start downloads again,
  // or writes into a HOME that may not be writable.
  'XDG_CACHE_HOME',
  'XDG_CONFIG_HOME',
  'XDG_DATA_HOME',
  'npm_config_cache',
  'UV_CACHE_DIR',
] as const;

/** Azure workload identity, as the AKS webhook injects it: given only to servers with `useWorkloadIdentity`. */
export const WORKLOAD_IDENTITY_ENVIRONMENT = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_AUTHORITY_HOST',
] as const;

const baseNames = new Set<string>(BASE_ENVIRONMENT.filter((name) => !name.endsWith('*')));
const basePrefixes = BASE_ENVIRONMENT.filter((name) => name.endsWith('*')).map((name) => name.slice(0, -1));
const workloadIdentityNames = new Set<string>(WORKLOAD_IDENTITY_ENVIRONMENT);

const isBase = (name: string) =>
  baseNames.has(name) || basePrefixes.some((prefix) => name.startsWith(prefix));

/** The environment of a stdio server's child: the base, then workload identity if asked for, then its own `env`. */
export function childEnvironment(
  spec: { env: Record<string, string>; useWorkloadIdentity: boolean },
  proxyEnv: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const [name, value] of Object.entries(proxyEnv)) {
    if (value === undefined) continue;
    if (isBase(name) || (spec.useWorkloadIdentity && workloadIdentityNames.has(name)))
      inherited[name] = value;
  }
  return { ...inherited, ...spec.env };
}
