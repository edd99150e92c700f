/** The manifest after loading: validated, interpolated, defaults applied, adapters turned into servers. */
export interface Manifest {
  listen: { host?: string; port?: number };
  /** In declaration order: servers first, then adapters. */
  servers: ServerSpec[];
  /** Absent: no access control (every caller may use every server). */
  auth?: AuthConfig;
  /** Browser origins allowed besides localhost. */
  allowedOrigins: string[];
  /** Host names answered besides this machine's own (DNS rebinding protection); lowercase. */
  allowedHosts: string[];
  limits: Limits;
}

export interface AuthConfig {
  apiKeys: ApiKeySpec[];
  jwt?: JwtSpec;
}

export interface ApiKeySpec {
  name: string;
  /** SHA-256 of the key, lowercase hex: the key itself is not kept once loaded. */
  sha256: string;
  /** `*` for every server. */
  servers: '*' | string[];
}

export interface JwtSpec {
  issuer: string;
  audience: string[];
  jwksUri?: string;
  rolesClaim: string;
  scopesClaim: string;
}

export interface Limits {
  maxBodyBytes: number;
  /** Across all servers. */
  maxSessions?: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** After SIGTERM, how long answers being written may take before sessions are closed anyway. */
  shutdownGraceMs: number;
}

export type ServerSpec = StdioServerSpec | RemoteServerSpec;

export type Isolation = 'shared' | 'session';
export type Startup = 'eager' | 'lazy';
export type RestartPolicy = 'always' | 'on-failure' | 'never';

interface CommonSpec {
  name: string;
  description?: string;
  /** Where it was declared: the `servers` map or the `adapters` list. */
  origin: 'servers' | 'adapters';
  useWorkloadIdentity: boolean;
  maxSessions?: number;
  idleTimeoutMs: number;
  timeoutMs: number;
  /** How long sessions on a replaced or removed version may stay, after a reload. */
  drainTimeoutMs: number;
  disabled: boolean;
  /** A JWT caller needs one of these roles (from `requiredRoles`, or an adapter payload's). */
  requiredRoles?: string[];
  /** A JWT caller needs all of these scopes. */
  requiredScopes?: string[];
}

export interface StdioServerSpec extends CommonSpec {
  kind: 'stdio';
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Absolute. */
  cwd: string;
  isolation: Isolation;
  /** With `isolation: session`: children kept started ahead of demand, so a new session need not wait. */
  prewarm: number;
  startup: Startup;
  restart: RestartPolicy;
}

export interface RemoteServerSpec extends CommonSpec {
  kind: 'remote';
  url: string;
  headers: Record<string, string>;
  scope?: string;
}

/** Values used where neither the server nor `defaults` says otherwise. */
export const BUILT_IN_DEFAULTS = {
  useWorkloadIdentity: false,
  isolation: 'shared' as Isolation,
  startup: 'eager' as Startup,
  restart: 'always' as RestartPolicy,
  idleTimeoutMs: 15 * 60_000,
  timeoutMs: 10 * 60_000,
  drainTimeoutMs: 30_000,
  /**
   * `maxSessions` of an `isolation: session` server that names none: each session is a process of its own,
   * and without a bound any caller allowed on the server could start them until the pod runs out (0047).
   */
  sessionProcesses: 32,
};

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 4 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // Above the 60 s that AWS's ALB and ingress-nginx keep idle connections to a backend: the side that keeps a
  // connection longer must never be the one to close it, or a request sent as it closes fails (0033).
  keepAliveTimeoutMs: 72_000,
  // Then up to 3 s for the children to stop; the shipped Deployment gives the pod 45 s in all.
  shutdownGraceMs: 10_000,
};
