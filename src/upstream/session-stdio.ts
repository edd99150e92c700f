import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { SessionEndpoint } from '../downstream/session-endpoint.js';
import type { ServerSpec, StdioServerSpec } from '../manifest/types.js';
import { UnavailableError, type ChannelListener, type SessionChannel } from './channel.js';
import type { StdioChild } from './child.js';
import { ErrorCode, errorResponse, isNotification, isRequest, isResponse } from './jsonrpc.js';
import {
  describeExit,
  describeExitToClient,
  sessionEndpointFor,
  spawnServerChild,
  whereToLook,
  whyServerNotRunnable,
} from './spawn.js';
import type { StartVerdict, Upstream, UpstreamDeps, UpstreamStatus } from './types.js';

/**
 * A stdio server with one child per client session (`isolation: session`), for stateful servers such as
 * browsers. The client's own initialize goes to its child. Children are spawned on initialize, from a
 * warm pool of `prewarm` already-running ones when there is one, and stopped when the session ends
 * (DELETE, idle timeout, shutdown). A child that exits ends its session: the client gets 404 and
 * initializes again, as the transport specifies.
 */
export function createSessionStdioUpstream(spec: StdioServerSpec, deps: UpstreamDeps): Upstream {
  return new SessionStdioUpstream(spec, deps);
}

class SessionStdioUpstream implements Upstream {
  /** Every running child, with the channel of the session it serves (none while it waits in the pool). */
  private readonly live = new Map<StdioChild, ChildChannel | undefined>();
  private readonly pool: StdioChild[] = [];
  private readonly endpoint: SessionEndpoint;
  private stopping = false;
  private started = false;
  /** Set when start() found the command cannot run: no session could be served. */
  private unrunnable = false;
  private lastError?: string;
  private lastStderr: string[] = [];
  /** Children the proxy stopped itself (session over, pool shrunk): their exit by SIGTERM is no error. */
  private readonly stoppedHere = new WeakSet<StdioChild>();

  constructor(
    private current: StdioServerSpec,
    private readonly deps: UpstreamDeps,
  ) {
    const spec = current;
    this.endpoint = sessionEndpointFor(spec, deps, { open: async () => this.openChannel() });
  }

  get spec(): StdioServerSpec {
    return this.current;
  }

  async start(): Promise<StartVerdict> {
    this.started = true;
    // No child runs until a session asks for one: check now that one could.
    const reason = whyServerNotRunnable(this.spec, this.deps);
    if (reason) {
      this.lastError = reason;
      this.unrunnable = true;
      return { ok: false, reason };
    }
    this.refillPool();
    return { ok: true };
  }

  owns(sessionId: string): boolean {
    return this.endpoint.has(sessionId);
  }

  update(spec: ServerSpec): void {
    if (spec.kind !== 'stdio') return;
    this.current = spec;
    this.endpoint.update({ maxSessions: spec.maxSessions, idleTimeoutMs: spec.idleTimeoutMs });
    // A smaller pool gives back its spare children; a larger one fills up.
    for (const spare of this.pool.splice(spec.prewarm)) this.stopChild(spare);
    this.refillPool();
  }

  handle(req: Parameters<Upstream['handle']>[0], res: Parameters<Upstream['handle']>[1]): Promise<void> {
    return this.endpoint.handle(req, res);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.endpoint.closeAll();
    await Promise.all([...this.live.keys()].map((child) => child.stop()));
  }

  sessionCount(): number {
    return this.endpoint.size;
  }

  status(): UpstreamStatus {
    const pids = [...this.live.keys()].map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
    return {
      name: this.spec.name,
      kind: 'stdio',
      isolation: 'session',
      state: this.stopping ? 'stopped' : this.unrunnable ? 'failed' : this.started ? 'ready' : 'starting',
      pids,
      sessions: this.sessionCount(),
      restarts: 0,
      ...(this.lastError !== undefined && { lastError: this.lastError }),
      stderr: this.lastStderr,
    };
  }

  private openChannel(): SessionChannel {
    if (this.stopping) throw new UnavailableError(`server ${this.spec.name} is stopping`);
    const child = this.pool.shift() ?? this.spawn();
    this.refillPool();
    const channel = new ChildChannel(
      child,
      () => this.current.timeoutMs,
      () => this.stopChild(child),
    );
    this.live.set(child, channel);
    return channel;
  }

  private refillPool(): void {
    while (!this.stopping && this.pool.length < this.spec.prewarm) this.pool.push(this.spawn());
  }

  private spawn(): StdioChild {
    const child = spawnServerChild(this.spec, this.deps);
    this.live.set(child, undefined);
    child.onexit = (exit) => {
      const channel = this.live.get(child);
      this.live.delete(child);
      const index = this.pool.indexOf(child);
      if (index !== -1) this.pool.splice(index, 1);
      this.lastStderr = child.stderrTail();
      if (!this.stopping && !this.stoppedHere.has(child) && (exit.error || exit.code !== 0)) {
        this.lastError = `a session's process ${describeExit(exit)}`;
      }
      channel?.childExited(`server process ${describeExitToClient(exit)}; ${whereToLook(this.spec.name)}`);
    };
    return child;
  }

  private stopChild(child: StdioChild): void {
    this.stoppedHere.add(child);
    void child.stop();
  }
}

/** One session's own child: messages pass as they are, and the request each belongs to is tracked. */
class ChildChannel implements SessionChannel {
  listener?: ChannelListener;
  /** Client requests in flight, with their progress tokens (where the child's notifications belong) and timers. */
  private readonly inFlight = new Map<RequestId, { token?: string | number; timer?: NodeJS.Timeout }>();

  constructor(
    private readonly child: StdioChild,
    /** The server's current `timeout` in ms (0: none). */
    private readonly timeoutMs: () => number,
    /** Stops the child as the proxy's own doing: the session is over. */
    private readonly stopChild: () => void,
  ) {
    child.onmessage = (message) => this.fromChild(message);
  }

  /** `why` is what the client is told. */
  childExited(why: string): void {
    // Requests in flight get an answer instead of silence, then the session ends.
    for (const [id, { timer }] of this.inFlight) {
      clearTimeout(timer);
      this.listener?.deliver(errorResponse(id, ErrorCode.UpstreamUnavailable, why), id);
    }
    this.inFlight.clear();
    this.listener?.upstreamClosed();
  }

  send(message: JSONRPCMessage): void {
    if (isRequest(message)) {
      const timeout = this.timeoutMs();
      const id = message.id;
      this.inFlight.set(id, {
        token: message.params?._meta?.progressToken,
        ...(timeout > 0 && { timer: setTimeout(() => this.timedOut(id, timeout), timeout) }),
      });
    } else if (isNotification(message) && message.method === 'notifications/cancelled') {
      this.settle(message.params?.requestId as RequestId);
    }
    try {
      this.child.send(message);
    } catch (error) {
      // Not sent (one nested too deeply to write, see ClientSession): nothing is in flight.
      if (isRequest(message)) this.settle(message.id);
      throw error;
    }
  }

  close(): void {
    for (const { timer } of this.inFlight.values()) clearTimeout(timer);
    this.stopChild();
  }

  /** Forgets a request; false if it was not in flight. */
  private settle(id: RequestId): boolean {
    const entry = this.inFlight.get(id);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.inFlight.delete(id);
    return true;
  }

  /** The client gets an error now, and the child is told to stop working on it. */
  private timedOut(id: RequestId, timeout: number): void {
    if (!this.settle(id)) return;
    this.child.send({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: id, reason: `no answer within ${timeout} ms` },
    });
    this.listener?.deliver(
      errorResponse(id, ErrorCode.RequestTimeout, `upstream did not answer within ${timeout} ms`),
      id,
    );
  }

  private fromChild(message: JSONRPCMessage): void {
    if (isResponse(message)) {
      if (message.id !== undefined && !this.settle(message.id)) return; // timed out: already answered
      this.listener?.deliver(message);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/progress') {
      const token = message.params?.progressToken;
      for (const [id, entry] of this.inFlight) {
        if (entry.token !== token) continue;
        entry.timer?.refresh(); // a call that reports progress is alive
        return this.listener?.deliver(message, id);
      }
    }
    // Logs and requests of the child while exactly one request is in flight travel on that request's
    // stream, where a client waiting for the result is sure to be listening.
    const sole = this.inFlight.size === 1 ? [...this.inFlight.keys()][0] : undefined;
    this.listener?.deliver(message, isRequest(message) || isNotification(message) ? sole : undefined);
  }
}
