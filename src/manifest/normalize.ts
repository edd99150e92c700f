import { isAbsolute, resolve } from 'node:path';
import { quoted, type PathSegment } from './diagnostics.js';
import { parseDuration } from './duration.js';
import { error, warning, type Problem } from './problem.js';
import { splitShellWords } from './shell-words.js';
import { isLoopback } from '../host-address.js';
import { urlCredentials } from '../url-credentials.js';
import { createHash } from 'node:crypto';
import {
  BUILT_IN_DEFAULTS,
  DEFAULT_LIMITS,
  type AuthConfig,
  type Limits,
  type Manifest,
  type ServerSpec,
} from './types.js';

type Scalar = string | number | boolean;

/** Server settings that `defaults` may also carry. */
interface PolicyInput {
  useWorkloadIdentity?: boolean;
  isolation?: 'shared' | 'session';
  maxSessions?: number;
  idleTimeout?: string | number;
  startup?: 'eager' | 'lazy';
  timeout?: string | number;
  restart?: 'always' | 'on-failure' | 'never';
  drainTimeout?: string | number;
}

interface ServerInput extends PolicyInput {
  description?: string;
  command?: string;
  args?: Scalar[];
  env?: Record<string, Scalar>;
  cwd?: string;
  url?: string;
  headers?: Record<string, Scalar>;
  scope?: string;
  disabled?: boolean;
  prewarm?: number;
  requiredRoles?: string[];
  requiredScopes?: string[];
}

interface AdapterInput {
  name: string;
  description?: string;
  imageName?: string;
  imageVersion?: string;
  environmentVariables: Record<string, Scalar>;
  useWorkloadIdentity?: boolean;
  replicaCount?: number;
  requiredRoles?: string[];
}

interface AuthInput {
  apiKeys?: { name: string; key?: string; sha256?: string; servers: string[] }[];
  jwt?: {
    issuer: string;
    audience: string | string[];
    jwksUri?: string;
    rolesClaim?: string;
    scopesClaim?: string;
  };
}

interface LimitsInput {
  maxBodyBytes?: number;
  maxSessions?: number;
  headersTimeout?: string | number;
  requestTimeout?: string | number;
  keepAliveTimeout?: string | number;
  shutdownGrace?: string | number;
}

/** The manifest as the schema describes it. */
export interface ManifestInput {
  listen?: { host?: string; port?: number };
  auth?: AuthInput;
  allowedOrigins?: string[];
  allowedHosts?: string[];
  limits?: LimitsInput;
  defaults?: PolicyInput;
  servers?: Record<string, ServerInput>;
  adapters?: AdapterInput[];
}

export interface NormalizeOptions {
  /** Directory of the manifest: relative `cwd`s resolve against it, and it is the default `cwd`. */
  baseDir: string;
  /** True for paths the schema already found wrong: those entries are skipped, not reported twice. */
  isInvalid(path: readonly PathSegment[]): boolean;
}

/** Fields of the adapter payload that choose the upstream rather than being passed to it. */
const ADAPTER_CONTROL_VARIABLES = ['MCP_COMMAND', 'MCP_ARGS', 'MCP_PROXY_URL'];
const ADAPTER_IGNORED_FIELDS = ['imageName', 'imageVersion', 'replicaCount'] as const;

/**
 * Turns a schema-checked manifest into the servers to run: applies defaults, turns adapter payloads
 * into servers, resolves paths and durations, and checks what the schema cannot express (names unique
 * across sections, MCP_ARGS quoting, a token scope for a remote server that uses workload identity).
 * Pure. Entries the schema rejected are skipped so that the remaining ones are still checked.
 */
export function normalize(
  input: ManifestInput,
  options: NormalizeOptions,
): { manifest: Manifest; problems: Problem[] } {
  const problems: Problem[] = [];
  const defaults = options.isInvalid(['defaults']) ? {} : (input.defaults ?? {});
  const servers: ServerSpec[] = [];
  const declaredAt = new Map<string, PathSegment[]>();

  const claimName = (name: string, path: PathSegment[]): boolean => {
    const first = declaredAt.get(name);
    if (first) {
      problems.push(
        error(
          path,
          `the name ${quoted(name)} is already used at ${describeDeclaration(first)}; names must be unique`,
        ),
      );
      return false;
    }
    declaredAt.set(name, path);
    return true;
  };

  for (const [name, server] of Object.entries(input.servers ?? {})) {
    const path: PathSegment[] = ['servers', name];
    if (!claimName(name, path) || options.isInvalid(path)) continue;
    const spec = serverFromInput(name, server, defaults, options.baseDir);
    problems.push(...checkIdentity(spec, path), ...checkServerUrl(spec, path));
    servers.push(spec);
  }

  (input.adapters ?? []).forEach((adapter, index) => {
    const path: PathSegment[] = ['adapters', index];
    if (options.isInvalid(path)) {
      // Still claim a valid-looking name, so a duplicate elsewhere is reported against it.
      if (typeof adapter?.name === 'string') declaredAt.set(adapter.name, [...path, 'name']);
      return;
    }
    if (!claimName(adapter.name, [...path, 'name'])) return;
    const converted = serverFromAdapter(adapter, path, defaults, options.baseDir);
    problems.push(...converted.problems);
    if (!converted.spec) return;
    problems.push(...checkIdentity(converted.spec, path), ...checkServerUrl(converted.spec, path));
    servers.push(converted.spec);
  });

  const declaresNone = Object.keys(input.servers ?? {}).length === 0 && (input.adapters ?? []).length === 0;
  // Only worth saying of an otherwise valid manifest (isInvalid([]) is true when anything is invalid).
  if (declaresNone && !options.isInvalid([])) {
    problems.push(
      warning([], 'declares no servers: nothing will be served until `servers:` or `adapters:` lists one'),
    );
  }
  const listen = options.isInvalid(['listen']) ? {} : { ...input.listen };
  const auth = options.isInvalid(['auth']) || !input.auth ? undefined : authFromInput(input.auth);
  if (auth) problems.push(...checkAuthNames(input.auth!, auth, declaredAt));
  if (auth && input.auth!.jwt) problems.push(...checkJwtUrls(input.auth!.jwt));
  // An `auth` that is wrong is reported as such: whether it meant a `jwt` is not known, so not guessed.
  const authUnknown = options.isInvalid(['auth']);
  if (!auth?.jwt && !authUnknown) problems.push(...rolesWithoutJwt(servers, declaredAt));
  const limits = options.isInvalid(['limits']) ? DEFAULT_LIMITS : limitsFromInput(input.limits ?? {});
  const allowedOrigins = options.isInvalid(['allowedOrigins']) ? [] : (input.allowedOrigins ?? []);
  const allowedHosts = options.isInvalid(['allowedHosts'])
    ? []
    : (input.allowedHosts ?? []).map((h) => h.toLowerCase());
  return {
    manifest: { listen, servers, ...(auth && { auth }), allowedOrigins, allowedHosts, limits },
    problems,
  };
}

function describeDeclaration(path: PathSegment[]): string {
  return path[0] === 'servers' ? `servers.${String(path[1])}` : `adapters[${String(path[1])}]`;
}

function serverFromInput(name: string, s: ServerInput, defaults: PolicyInput, baseDir: string): ServerSpec {
  const common = {
    name,
    description: s.description,
    origin: 'servers' as const,
    useWorkloadIdentity:
      s.useWorkloadIdentity ?? defaults.useWorkloadIdentity ?? BUILT_IN_DEFAULTS.useWorkloadIdentity,
    maxSessions: s.maxSessions ?? defaults.maxSessions,
    idleTimeoutMs: durationOr(s.idleTimeout ?? defaults.idleTimeout, BUILT_IN_DEFAULTS.idleTimeoutMs),
    timeoutMs: durationOr(s.timeout ?? defaults.timeout, BUILT_IN_DEFAULTS.timeoutMs),
    drainTimeoutMs: durationOr(s.drainTimeout ?? defaults.drainTimeout, BUILT_IN_DEFAULTS.drainTimeoutMs),
    disabled: s.disabled ?? false,
    ...(s.requiredRoles && { requiredRoles: [...s.requiredRoles] }),
    ...(s.requiredScopes && { requiredScopes: [...s.requiredScopes] }),
  };
  if (s.url !== undefined) {
    return { ...common, kind: 'remote', url: s.url, headers: stringMap(s.headers), scope: s.scope };
  }
  const isolation = s.isolation ?? defaults.isolation ?? BUILT_IN_DEFAULTS.isolation;
  return {
    ...common,
    kind: 'stdio',
    ...(isolation === 'session' && { maxSessions: common.maxSessions ?? BUILT_IN_DEFAULTS.sessionProcesses }),
    command: s.command!,
    args: (s.args ?? []).map(String),
    env: stringMap(s.env),
    cwd: s.cwd === undefined ? baseDir : isAbsolute(s.cwd) ? s.cwd : resolve(baseDir, s.cwd),
    isolation,
    prewarm: s.prewarm ?? 0,
    startup: s.startup ?? defaults.startup ?? BUILT_IN_DEFAULTS.startup,
    restart: s.restart ?? defaults.restart ?? BUILT_IN_DEFAULTS.restart,
  };
}

/** An adapter payload is a server described through environment variables, as the gateway's image read them. */
function serverFromAdapter(
  a: AdapterInput,
  path: PathSegment[],
  defaults: PolicyInput,
  baseDir: string,
): { spec?: ServerSpec; problems: Problem[] } {
  const problems: Problem[] = [];
  for (const field of ADAPTER_IGNORED_FIELDS) {
    if (a[field] !== undefined) {
      problems.push(warning([...path, field], `ignored: all adapters run in this one proxy process`, true));
    }
  }
  const variables = a.environmentVariables;
  const env = stringMap(
    Object.fromEntries(Object.entries(variables).filter(([k]) => !ADAPTER_CONTROL_VARIABLES.includes(k))),
  );
  const server: ServerInput = {
    description: a.description,
    useWorkloadIdentity: a.useWorkloadIdentity,
    requiredRoles: a.requiredRoles,
  };
  if (variables.MCP_PROXY_URL !== undefined) {
    server.url = String(variables.MCP_PROXY_URL);
    for (const key of Object.keys(env)) {
      problems.push(
        warning(
          [...path, 'environmentVariables', key],
          'ignored: a remote server has no process to pass it to',
          true,
        ),
      );
    }
  } else {
    const split = splitShellWords(String(variables.MCP_ARGS ?? ''));
    if ('error' in split) {
      problems.push(
        error(
          [...path, 'environmentVariables', 'MCP_ARGS'],
          `cannot be split into arguments: ${split.error}`,
        ),
      );
      return { problems };
    }
    Object.assign(server, { command: String(variables.MCP_COMMAND), args: split.words, env });
  }
  const spec: ServerSpec = { ...serverFromInput(a.name, server, defaults, baseDir), origin: 'adapters' };
  return { spec, problems };
}

/**
 * A remote server using the identity: it names its scope (the identity is presented as a token for some
 * audience), and sets no Authorization that would be lost.
 */
function checkIdentity(spec: ServerSpec, path: PathSegment[]): Problem[] {
  if (spec.kind !== 'remote' || !spec.useWorkloadIdentity) return [];
  const problems: Problem[] = [];
  const authorization = Object.keys(spec.headers).find((name) => name.toLowerCase() === 'authorization');
  if (authorization !== undefined) {
    problems.push(
      warning(
        [...path, 'headers', authorization],
        "is never sent: with useWorkloadIdentity, the identity's token is the Authorization header",
      ),
    );
  }
  if (!spec.scope) {
    const where =
      spec.origin === 'adapters' ? 'declare it under `servers:` with `url` and `scope`' : 'add `scope`';
    problems.push(
      error(
        path,
        `uses workload identity with a remote server but names no token scope (such as api://<app-id>/.default); ${where}`,
      ),
    );
  }
  return problems;
}

/**
 * What makes a URL the schema accepted unusable: the schema checks RFC 3986, which takes a port past
 * 65535 and a user or password that is not valid percent-encoding; Node's URL parser and the decoding
 * for Basic authorization do not, and would throw once the URL is used.
 */
function unusableUrl(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL that can be used (a port past 65535, say)';
  }
  try {
    urlCredentials(url);
  } catch {
    return 'has a user or password that is not valid percent-encoding (such as %FF)';
  }
  return undefined;
}

function checkServerUrl(spec: ServerSpec, path: PathSegment[]): Problem[] {
  const problem = spec.kind === 'remote' ? unusableUrl(spec.url) : undefined;
  if (problem === undefined) return [];
  const at =
    spec.origin === 'adapters' ? [...path, 'environmentVariables', 'MCP_PROXY_URL'] : [...path, 'url'];
  return [error(at, problem)];
}

/**
 * The JWT issuer and key URLs: usable, and the one the keys come from (jwksUri, else the issuer's
 * discovery document) over https unless on this host. Plain http there is a warning, not an error (a test
 * issuer inside the cluster may have no certificate), but whoever sits on that path could hand the proxy
 * signing keys of their own and mint any token. An issuer that is only compared with `iss` fetches nothing.
 */
function checkJwtUrls(jwt: NonNullable<AuthInput['jwt']>): Problem[] {
  return (['issuer', 'jwksUri'] as const).flatMap((field) => {
    const text = jwt[field];
    if (text === undefined) return [];
    const path = ['auth', 'jwt', field];
    const problem = unusableUrl(text);
    if (problem !== undefined) return [error(path, problem)];
    const url = new URL(text);
    const keysFromIt = field === 'jwksUri' || jwt.jwksUri === undefined;
    if (!keysFromIt || url.protocol !== 'http:' || isLoopback(url.hostname)) return [];
    return [
      warning(path, 'uses plain http: anyone on the way could hand the proxy signing keys of their own'),
    ];
  });
}

function authFromInput(input: AuthInput): AuthConfig {
  const apiKeys = (input.apiKeys ?? []).map((k) => ({
    name: k.name,
    // Only the digest is kept: a key from the environment does not linger in the manifest object.
    sha256: k.sha256?.toLowerCase() ?? createHash('sha256').update(k.key!).digest('hex'),
    servers: k.servers.includes('*') ? ('*' as const) : [...k.servers],
  }));
  const jwt = input.jwt && {
    issuer: input.jwt.issuer,
    audience: ([] as string[]).concat(input.jwt.audience),
    ...(input.jwt.jwksUri !== undefined && { jwksUri: input.jwt.jwksUri }),
    rolesClaim: input.jwt.rolesClaim ?? 'roles',
    scopesClaim: input.jwt.scopesClaim ?? 'scp',
  };
  return { apiKeys, ...(jwt && { jwt }) };
}

/** Key names must tell keys apart in logs, and a key naming no server of this manifest is probably a typo. */
function checkAuthNames(
  input: AuthInput,
  auth: AuthConfig,
  declared: ReadonlyMap<string, unknown>,
): Problem[] {
  const problems: Problem[] = [];
  const names = new Set<string>();
  const digests = new Set<string>();
  auth.apiKeys.forEach((key, i) => {
    if (names.has(key.name))
      problems.push(error(['auth', 'apiKeys', i, 'name'], `the key name ${quoted(key.name)} is used twice`));
    if (digests.has(key.sha256))
      problems.push(error(['auth', 'apiKeys', i], 'the same key is declared twice'));
    names.add(key.name);
    digests.add(key.sha256);
    if (key.servers === '*') return;
    input.apiKeys![i]!.servers.forEach((server, j) => {
      if (!declared.has(server)) {
        problems.push(
          warning(
            ['auth', 'apiKeys', i, 'servers', j],
            `names no server of this manifest: ${quoted(server)}`,
          ),
        );
      }
    });
  });
  if (auth.apiKeys.length === 0 && !auth.jwt) {
    problems.push(error(['auth'], 'declares neither `apiKeys` nor `jwt`: nobody could use any server'));
  }
  return problems;
}

/** Roles and scopes come from tokens: without `auth.jwt` they would protect nothing, and that must be said. */
function rolesWithoutJwt(servers: ServerSpec[], declared: ReadonlyMap<string, PathSegment[]>): Problem[] {
  return servers
    .filter((s) => s.requiredRoles?.length || s.requiredScopes?.length)
    .map((s) =>
      warning(
        declared.get(s.name) ?? [],
        `requiredRoles/requiredScopes are only checked for JWT callers, and \`auth.jwt\` is not configured`,
      ),
    );
}

function limitsFromInput(input: LimitsInput): Limits {
  return {
    maxBodyBytes: input.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes,
    ...(input.maxSessions !== undefined && { maxSessions: input.maxSessions }),
    headersTimeoutMs: durationOr(input.headersTimeout, DEFAULT_LIMITS.headersTimeoutMs),
    requestTimeoutMs: durationOr(input.requestTimeout, DEFAULT_LIMITS.requestTimeoutMs),
    keepAliveTimeoutMs: durationOr(input.keepAliveTimeout, DEFAULT_LIMITS.keepAliveTimeoutMs),
    shutdownGraceMs: durationOr(input.shutdownGrace, DEFAULT_LIMITS.shutdownGraceMs),
  };
}

function stringMap(map: Record<string, Scalar> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, String(v)]));
}

function durationOr(value: string | number | undefined, fallback: number): number {
  return value === undefined ? fallback : parseDuration(value);
}
