import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { Environment } from '../manifest/interpolate.js';
import type { Isolation, ServerSpec } from '../manifest/types.js';

export type UpstreamState = 'starting' | 'ready' | 'restarting' | 'failed' | 'stopped';

/** What `/servers` shows of one server. */
export interface UpstreamStatus {
  name: string;
  kind: 'stdio' | 'remote';
  isolation?: Isolation;
  state: UpstreamState;
  /** Process ids of the children running now (none for a remote server). */
  pids: number[];
  /** Client sessions open now (as far as the proxy can know: a remote server's sessions are its own). */
  sessions: number;
  /** Times a child was started again after it exited. */
  restarts: number;
  lastError?: string;
  /** Last lines the children wrote to stderr, oldest first. */
  stderr: string[];
}

export type StartVerdict = { ok: true } | { ok: false; reason: string };

/**
 * One served MCP server, whatever its kind. The gateway hands it the HTTP requests for
 * /servers/<name>/mcp and never needs to know whether a child process or a remote server answers.
 * Modelled on the SDK's Transport: a few members, every kind implements all of them.
 */
export interface Upstream {
  readonly spec: ServerSpec;
  /**
   * Makes it ready to serve: eager children are spawned and initialized, others are checked to be
   * runnable. Resolves after the first attempt with its verdict; never throws. A reload keeps the old
   * version when the new one is not ok; at boot, supervision keeps retrying in the background.
   */
  start(): Promise<StartVerdict>;
  /**
   * Serves one request (POST, GET or DELETE) of the Streamable HTTP transport. Must always answer `res`,
   * with a JSON-RPC error body when the upstream cannot; never throws.
   */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** True when the client session with this id is held here: a reload routes it here until it drains. */
  owns(sessionId: string): boolean;
  /** Applies settings that can change without a restart (limits, timeouts, description, restart policy). */
  update(spec: ServerSpec): void;
  /** Stops serving: closes its sessions and stops its children. Idempotent. */
  stop(): Promise<void>;
  /** Client sessions open now, as `status().sessions`, without building the rest of the status. */
  sessionCount(): number;
  status(): UpstreamStatus;
}

/** What every upstream needs from the process it runs in. */
export interface UpstreamDeps {
  log: Logger;
  /**
   * The proxy's environment: the source of the child's base and workload-identity variables, and of the
   * egress proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) that remote servers are reached through.
   */
  env: Environment;
  /** The largest request body accepted now (`limits.maxBodyBytes`, which a reload may change). */
  maxBodyBytes?: () => number;
}
