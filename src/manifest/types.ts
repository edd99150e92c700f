/** The manifest after loading: validated, interpolated, defaults applied, adapters turned into servers. */
export interface Manifest {
  listen: { host?: string; port?: number };
  /** In declaration order: servers first, then adapters. */
  servers: ServerSpec[];
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
  /** From an adapter payload; enforced by access control. */
  requiredRoles?: string[];
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
};
