import {
  LATEST_PROTOCOL_VERSION,
  type InitializeResult,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import type { SessionEndpoint } from '../downstream/session-endpoint.js';
import type { ServerSpec, StdioServerSpec } from '../manifest/types.js';
import { VERSION } from '../version.js';
import { decideRestart, RESTART_BACKOFF } from './backoff.js';
import { UnavailableError, type SessionChannel } from './channel.js';
import type { ChildExit, StdioChild } from './child.js';
import { isResponse, type Response } from './jsonrpc.js';
import { Multiplexer } from './multiplexer.js';
import {
  describeExit,
  describeExitToClient,
  sessionEndpointFor,
  spawnServerChild,
  whereToLook,
  whyServerNotRunnable,
} from './spawn.js';
import type { StartVerdict, Upstream, UpstreamDeps, UpstreamState, UpstreamStatus } from './types.js';

/** The id of the proxy's own initialize request to a child: a string, so it never meets a client's. */
const INITIALIZE_ID = 'mcp-proxy-initialize';
/**
 * A child that has not answered initialize by then is treated as a failed start. Generous, and apart
 * from `timeout`: `npx -y` and `uvx --from git+…` download and build on their first start.
 */
const MAX_INITIALIZE_MS = 120_000;

/**
 * A stdio server with one long-lived child that every client session shares (`isolation: shared`).
 * The proxy initializes the child once; clients are answered from that result and multiplexed over it.
 * A child that exits is restarted with backoff; one that keeps failing is marked `failed`.
 */
export function createSharedStdioUpstream(spec: StdioServerSpec, deps: UpstreamDeps): Upstream {
  return new SharedStdioUpstream(spec, deps);
}

class SharedStdioUpstream implements Upstream {
  /** Meaningful once launched; before that status() reports what start-up will do. */
  private state: UpstreamState = 'stopped';
  private child?: StdioChild;
  /** The current child's pid while it runs; a pid kept past its exit could name someone else's process. */
  private pid?: number;
  private restarts = 0;
  private readonly starts: number[] = [];
  private lastError?: string;
  /** Why the proxy stopped the current child itself, which its exit (by SIGTERM) would otherwise hide. */
  private stoppedFor?: string;
  private launched = false;
  private stopping = false;
  private retryTimer?: NodeJS.Timeout;
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  /** Set while start() waits for the first launch to become ready or fail. */
  private firstAttempt?: (reason?: string) => void;
  private readonly mux: Multiplexer;
  private readonly endpoint: SessionEndpoint;

  constructor(
    private current: StdioServerSpec,
    private readonly deps: UpstreamDeps,
  ) {
    const spec = current;
    this.mux = new Multiplexer(
      (message) => this.child?.send(message),
      spec.name,
      () => this.current.timeoutMs,
    );
    this.endpoint = sessionEndpointFor(spec, deps, { open: () => this.openChannel() });
  }

  get spec(): StdioServerSpec {
    return this.current;
  }

  async start(): Promise<StartVerdict> {
    if (this.spec.startup === 'lazy') {
      // Kept, so that the listing says now what the first use would find; that use still tries.
      this.lastError = whyServerNotRunnable(this.spec, this.deps);
      return this.lastError ? { ok: false, reason: this.lastError } : { ok: true };
    }
    const reason = await new Promise<string | undefined>((resolve) => {
      this.firstAttempt = resolve;
      this.launch();
    });
    return reason === undefined ? { ok: true } : { ok: false, reason };
  }

  owns(sessionId: string): boolean {
    return this.endpoint.has(sessionId);
  }

  update(spec: ServerSpec): void {
    if (spec.kind !== 'stdio') return;
    this.current = spec;
    this.endpoint.update({ maxSessions: spec.maxSessions, idleTimeoutMs: spec.idleTimeoutMs });
    // Made eager by a reload before its first use: started now, as at boot. Readiness waits for it, and a
    // proxy held out of its Service for it might never see that first use.
    if (spec.startup === 'eager' && !this.launched && !this.stopping) this.launch();
  }

  handle(req: Parameters<Upstream['handle']>[0], res: Parameters<Upstream['handle']>[1]): Promise<void> {
    return this.endpoint.handle(req, res);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.settleFirstAttempt(`server ${this.spec.name} was stopped`);
    this.settleWaiters(new UnavailableError(`server ${this.spec.name} is stopping`));
    await this.endpoint.closeAll();
    await this.child?.stop();
    this.state = 'stopped';
  }

  sessionCount(): number {
    return this.endpoint.size;
  }

  status(): UpstreamStatus {
    return {
      name: this.spec.name,
      kind: 'stdio',
      isolation: 'shared',
      state: this.launched || this.stopping ? this.state : this.stateBeforeLaunch(),
      pids: this.pid !== undefined ? [this.pid] : [],
      sessions: this.sessionCount(),
      restarts: this.restarts,
      ...(this.lastError !== undefined && { lastError: this.lastError }),
      stderr: this.child?.stderrTail() ?? [],
    };
  }

  /**
   * What start-up will do, before any child ran: an eager server is starting; a lazy one is ready for its
   * first use, or failed when its command was found unable to run.
   */
  private stateBeforeLaunch(): UpstreamState {
    if (this.spec.startup !== 'lazy') return 'starting';
    return this.lastError === undefined ? 'ready' : 'failed';
  }

  private async openChannel(): Promise<SessionChannel> {
    await this.whenReady();
    return this.mux.openSession();
  }

  /** Resolves once the child is initialized; starts it on first use (`startup: lazy`). */
  private whenReady(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.stopping) return Promise.reject(new UnavailableError(`server ${this.spec.name} is stopping`));
    if (this.state === 'failed' || (this.state === 'stopped' && this.launched)) {
      return Promise.reject(this.down());
    }
    const ready = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.launched) this.launch();
    return ready;
  }

  private launch(): void {
    this.launched = true;
    this.state = this.restarts > 0 ? 'restarting' : 'starting';
    this.starts.push(Date.now());
    // Only the starts since the last stable run matter to the backoff; older ones would only pile up.
    if (this.starts.length > RESTART_BACKOFF.maxFailedStarts + 1) this.starts.shift();
    const child = spawnServerChild(this.spec, this.deps);
    this.child = child;
    this.pid = child.pid;
    const timer = setTimeout(() => {
      this.stoppedFor = `did not answer initialize within ${MAX_INITIALIZE_MS / 1000} s`;
      void child.stop();
    }, MAX_INITIALIZE_MS);
    child.onmessage = (message: JSONRPCMessage) => {
      if (isResponse(message) && message.id === INITIALIZE_ID) {
        clearTimeout(timer);
        this.initialized(child, message);
      } else {
        this.mux.fromUpstream(message);
      }
    };
    child.onexit = (exit) => {
      clearTimeout(timer);
      this.exited(child, exit);
    };
    child.send({
      jsonrpc: '2.0',
      id: INITIALIZE_ID,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        // Sampling and elicitation are asked during a call and go to the caller's session. Roots are not
        // offered: they are one client's view, and a shared child would impose them on every session
        // (servers such as the filesystem one narrow their access to the client's roots). A server that
        // needs a client's roots runs with `isolation: session`, which passes the client's own initialize.
        capabilities: { sampling: {}, elicitation: {} },
        clientInfo: { name: 'mcp-proxy', version: VERSION },
      },
    });
  }

  private initialized(child: StdioChild, response: Response): void {
    if ('error' in response) {
      this.stoppedFor = `initialize failed: ${response.error.message}`;
      void child.stop();
      return;
    }
    child.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    this.mux.upstreamReady(response.result as InitializeResult);
    this.state = 'ready';
    this.deps.log.info('server-ready', { server: this.spec.name, pid: child.pid });
    this.settleWaiters();
    this.settleFirstAttempt();
  }

  private exited(child: StdioChild, exit: ChildExit): void {
    if (child !== this.child) return;
    this.pid = undefined;
    this.mux.upstreamLost(`process ${describeExitToClient(exit)}`);
    if (this.stopping) return;
    const tail = child.stderrTail().at(-1);
    this.lastError = `${this.stoppedFor ?? `process ${describeExit(exit)}`}${tail ? `; last stderr: ${tail}` : ''}`;
    this.stoppedFor = undefined;
    this.settleFirstAttempt(this.lastError);
    this.deps.log.warn('server-exited', { server: this.spec.name, pid: child.pid, reason: this.lastError });
    const decision = decideRestart(this.spec.restart, exit, this.starts, Date.now());
    if (decision.action === 'restart') {
      this.state = 'restarting';
      this.restarts++;
      this.retryTimer = setTimeout(() => this.launch(), decision.delayMs);
      return;
    }
    this.state = decision.action === 'give-up' ? 'failed' : 'stopped';
    // A spawn failure's reason already is the whole story; a crash loop's adds to the last exit.
    if (decision.action === 'give-up' && !exit.error)
      this.lastError = `${decision.reason}; ${this.lastError}`;
    this.deps.log.error('server-down', { server: this.spec.name, state: this.state, reason: this.lastError });
    this.settleWaiters(this.down());
  }

  /** What a client is told of a server that is down: its state, not its last error (see whereToLook). */
  private down(): UnavailableError {
    const name = this.spec.name;
    return new UnavailableError(`server ${name} is ${this.state}; ${whereToLook(name)}`, 30);
  }

  private settleFirstAttempt(reason?: string): void {
    this.firstAttempt?.(reason);
    this.firstAttempt = undefined;
  }

  private settleWaiters(error?: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve();
    }
  }
}
