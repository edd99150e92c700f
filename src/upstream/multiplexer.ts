import {
  SUPPORTED_PROTOCOL_VERSIONS,
  type ClientCapabilities,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { ChannelListener, SessionChannel } from './channel.js';
import { ErrorCode, errorResponse, isNotification, isRequest, isResponse, type Response } from './jsonrpc.js';
import { confusableWith } from './confusable-names.js';
import { withId, withOwnId } from './message-text.js';

/** A client request in flight upstream, under the id the multiplexer gave it. */
interface PendingRequest {
  session: MuxSession;
  clientId: RequestId;
  clientProgressToken?: string | number;
  /** Fires when the upstream takes longer than the server's `timeout`; progress restarts it. */
  timer?: NodeJS.Timeout;
}

/** A request from the upstream to one client (sampling, elicitation, roots), under a downstream id. */
interface PendingServerRequest {
  session: MuxSession;
  upstreamId: RequestId;
}

/**
 * Many client sessions over one upstream that was initialized once (a shared stdio child).
 *
 * Every id that crosses is remapped, so no session sees another's messages: client request ids and
 * progress tokens become upstream-unique numbers, server-to-client request ids become downstream-unique
 * numbers, and cancellations follow their request. List changes, which are about the server as a whole,
 * go to every session; resource updates to the sessions subscribed to that resource; anything else the
 * child says unasked (log lines, requests) only to the one session it can be about, or to none
 * (docs/decisions/0044-shared-child-attribution.md). Pure routing: it owns no process and no socket, only
 * the maps; `sendUpstream` is the child's stdin.
 */
export class Multiplexer {
  private readonly sessions = new Set<MuxSession>();
  private nextUpstreamId = 1;
  private nextDownstreamId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly serverRequests = new Map<number, PendingServerRequest>();
  private readonly subscribers = new Map<string, Set<MuxSession>>();
  private initializeResult?: InitializeResult;
  /** Why the upstream is not there now (it exited and has not been initialized again). */
  private downBecause?: string;

  constructor(
    private readonly sendUpstream: (message: JSONRPCMessage) => void,
    private readonly name: string,
    /** The server's current `timeout` in ms (0: none); read per request, so a reload's update applies. */
    private readonly timeoutMs: () => number = () => 0,
  ) {}

  /** The upstream is initialized (again, after a restart): what clients are told at their initialize. */
  upstreamReady(result: InitializeResult): void {
    this.initializeResult = result;
    this.downBecause = undefined;
    // A restarted child has forgotten its subscriptions: renew those that sessions still hold.
    for (const uri of this.subscribers.keys()) this.internalRequest('resources/subscribe', { uri });
  }

  /**
   * The upstream went away: every request in flight fails now rather than hanging, and requests it
   * made of clients are void. Sessions stay open; their calls fail at once until the upstream is ready
   * again (`upstreamReady`), then reach the restarted child.
   */
  upstreamLost(reason: string): void {
    this.downBecause = reason;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.session.inFlight.delete(id);
      p.session.deliver(
        errorResponse(p.clientId, ErrorCode.UpstreamUnavailable, `upstream ${this.name} ${reason}`),
      );
    }
    this.pending.clear();
    this.serverRequests.clear();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  openSession(): SessionChannel {
    const session = new MuxSession(this);
    this.sessions.add(session);
    return session;
  }

  /** A message from the upstream. */
  fromUpstream(message: JSONRPCMessage): void {
    if (isResponse(message)) this.routeResponse(message);
    else if (isRequest(message)) this.routeServerRequest(message);
    else if (isNotification(message)) this.routeNotification(message);
  }

  /** @internal a message from one session's client */
  fromClient(session: MuxSession, message: JSONRPCMessage): void {
    if (isRequest(message)) this.clientRequest(session, message);
    else if (isNotification(message)) this.clientNotification(session, message);
    else if (isResponse(message)) {
      const entry = typeof message.id === 'number' ? this.serverRequests.get(message.id) : undefined;
      if (!entry || entry.session !== session) return; // not ours to answer, or already void
      this.serverRequests.delete(message.id as number);
      try {
        this.sendUpstream({ ...message, id: entry.upstreamId });
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        // One nested too deeply to write (see ClientSession): the child must not wait for it in vain.
        const why = "the client's answer is nested too deeply to pass on";
        this.sendUpstream(errorResponse(entry.upstreamId, ErrorCode.InternalError, why));
      }
    }
  }

  /** @internal the session ended: cancel what it left in flight, release what it held. */
  closeSession(session: MuxSession): void {
    if (!this.sessions.delete(session)) return;
    for (const id of session.inFlight) {
      clearTimeout(this.pending.get(id)?.timer);
      this.pending.delete(id);
      this.sendUpstream(cancelled(id, 'the client session ended'));
    }
    session.inFlight.clear();
    for (const [downstreamId, entry] of this.serverRequests) {
      if (entry.session !== session) continue;
      this.serverRequests.delete(downstreamId);
      this.sendUpstream(errorResponse(entry.upstreamId, ErrorCode.InternalError, 'the client session ended'));
    }
    for (const uri of session.subscriptions ?? []) this.unsubscribe(session, uri, undefined);
  }

  private clientRequest(session: MuxSession, request: JSONRPCRequest): void {
    switch (request.method) {
      case 'initialize':
        session.capabilities = (request.params?.capabilities ?? {}) as ClientCapabilities;
        session.deliver({ jsonrpc: '2.0', id: request.id, result: this.initializeFor(request) });
        return;
      case 'ping':
        session.deliver({ jsonrpc: '2.0', id: request.id, result: {} });
        return;
      case 'resources/subscribe': {
        const uri = String(request.params?.uri);
        (session.subscriptions ??= new Set()).add(uri);
        const set = this.subscribers.get(uri) ?? new Set();
        set.add(session);
        this.subscribers.set(uri, set);
        try {
          this.forward(session, request);
        } catch (error) {
          // Not sent (see ClientSession): the client is told so, and must not get the updates either.
          this.dropSubscriber(session, uri);
          throw error;
        }
        return;
      }
      case 'resources/unsubscribe':
        this.unsubscribe(session, String(request.params?.uri), request);
        return;
    }
    this.forward(session, request);
  }

  private forward(session: MuxSession, request: JSONRPCRequest): void {
    if (this.downBecause !== undefined) {
      // Sent now it would be lost with the dead process, and the client would wait for its timeout.
      const message = `upstream ${this.name} is not running (${this.downBecause}); retry later`;
      session.deliver(errorResponse(request.id, ErrorCode.UpstreamUnavailable, message));
      return;
    }
    const confusable =
      confusableWith(request.params, '_meta') ?? confusableWith(request.params?._meta, 'progressToken');
    if (confusable !== undefined) {
      // Forwarded, the child might read it where the proxy rewrote the exact name (confusable-names.ts).
      const message = `Invalid params: "${confusable}" could be read as another member by the server`;
      session.deliver(errorResponse(request.id, ErrorCode.InvalidParams, message));
      return;
    }
    const upstreamId = this.nextUpstreamId++;
    const entry: PendingRequest = { session, clientId: request.id };
    let params = request.params;
    const token = params?._meta?.progressToken;
    if (token !== undefined) {
      // The upstream id doubles as the progress token: unique upstream, and found again in one lookup.
      entry.clientProgressToken = token;
      params = { ...params, _meta: { ...params!._meta, progressToken: upstreamId } };
    }
    const timeout = this.timeoutMs();
    if (timeout > 0) entry.timer = setTimeout(() => this.timedOut(upstreamId, timeout), timeout);
    this.pending.set(upstreamId, entry);
    session.inFlight.add(upstreamId);
    try {
      // The client's own text goes on only when it names id once (withOwnId); a rewritten one never.
      this.sendUpstream(
        params === request.params
          ? withOwnId(request, upstreamId)
          : { ...request, id: upstreamId, ...(params && { params }) },
      );
    } catch (error) {
      // Not sent (one nested too deeply to write, see ClientSession): nothing is in flight, and a session
      // left looking busy would have other sessions' log lines attributed to it (decision 0044).
      clearTimeout(entry.timer);
      this.pending.delete(upstreamId);
      session.inFlight.delete(upstreamId);
      throw error;
    }
  }

  private clientNotification(session: MuxSession, notification: JSONRPCNotification): void {
    switch (notification.method) {
      case 'notifications/initialized':
        return; // the proxy initialized the upstream itself, once
      case 'notifications/cancelled': {
        // A notification cannot be refused: one the child might read otherwise is not sent.
        if (confusableWith(notification.params, 'requestId') !== undefined) return;
        const upstreamId = this.findUpstreamId(session, notification.params?.requestId as RequestId);
        if (upstreamId === undefined) return;
        clearTimeout(this.pending.get(upstreamId)?.timer);
        this.pending.delete(upstreamId);
        session.inFlight.delete(upstreamId);
        this.sendUpstream({ ...notification, params: { ...notification.params, requestId: upstreamId } });
        return;
      }
      default:
        // Serialized from what the proxy read, never the client's own text: a child that keeps the first of
        // two "method" members would act on another notification (a cancellation) than the proxy did.
        this.sendUpstream({ ...notification });
    }
  }

  private routeResponse(response: Response): void {
    if (typeof response.id !== 'number') return; // the proxy's own requests use string ids
    const entry = this.pending.get(response.id);
    if (!entry) return; // cancelled, timed out, or its session is gone
    clearTimeout(entry.timer);
    this.pending.delete(response.id);
    entry.session.inFlight.delete(response.id);
    entry.session.deliver(withId(response, entry.clientId));
  }

  private routeServerRequest(request: JSONRPCRequest): void {
    if (request.method === 'ping') {
      this.sendUpstream({ jsonrpc: '2.0', id: request.id, result: {} });
      return;
    }
    const busy = this.busySessions();
    if (busy.length !== 1) {
      const why =
        busy.length === 0
          ? 'no client session has a call in flight'
          : `${busy.length} client sessions have calls in flight`;
      this.sendUpstream(
        errorResponse(
          request.id,
          ErrorCode.InternalError,
          `mcp-proxy cannot tell which client ${request.method} is for: ${why}`,
        ),
      );
      return;
    }
    const session = busy[0]!;
    const capability = CAPABILITY_FOR[request.method];
    if (capability !== undefined && !session.capabilities?.[capability]) {
      // The proxy offered it to the child for every client; this one did not declare it, and may not be
      // asked (a client without it would answer just this).
      const message = `Method not found: the client did not declare the ${capability} capability`;
      this.sendUpstream(errorResponse(request.id, ErrorCode.MethodNotFound, message));
      return;
    }
    const downstreamId = this.nextDownstreamId++;
    this.serverRequests.set(downstreamId, { session, upstreamId: request.id });
    session.deliver({ ...request, id: downstreamId }, session.soleInFlightClientId(this.pending));
  }

  private routeNotification(notification: JSONRPCNotification): void {
    const params = notification.params;
    switch (notification.method) {
      case 'notifications/progress': {
        const entry = this.pending.get(params?.progressToken as number);
        if (!entry || entry.clientProgressToken === undefined) return;
        entry.timer?.refresh(); // a call that reports progress is alive
        entry.session.deliver(
          { ...notification, params: { ...params, progressToken: entry.clientProgressToken } },
          entry.clientId,
        );
        return;
      }
      case 'notifications/cancelled': {
        // The upstream withdraws a request it made of a client.
        for (const [downstreamId, entry] of this.serverRequests) {
          if (entry.upstreamId !== params?.requestId) continue;
          this.serverRequests.delete(downstreamId);
          entry.session.deliver({ ...notification, params: { ...params, requestId: downstreamId } });
        }
        return;
      }
      case 'notifications/resources/updated':
        for (const session of this.subscribers.get(String(params?.uri)) ?? []) session.deliver(notification);
        return;
      case 'notifications/tools/list_changed':
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed':
        // About the server as a whole: every session's lists are out of date.
        for (const session of this.sessions) session.deliver(notification);
        return;
      default: {
        // Log lines, and whatever else names no request: they may tell one client's data (a log line that
        // names the rows a call read), so they go to the session whose call they can only be about, or to
        // no one.
        const busy = this.busySessions();
        if (busy.length === 1) busy[0]!.deliver(notification, busy[0]!.soleInFlightClientId(this.pending));
      }
    }
  }

  /** The client gets an error now, and the upstream is told to stop working on it. */
  private timedOut(upstreamId: number, timeout: number): void {
    const entry = this.pending.get(upstreamId);
    if (!entry) return;
    this.pending.delete(upstreamId);
    entry.session.inFlight.delete(upstreamId);
    this.sendUpstream(cancelled(upstreamId, `no answer within ${timeout} ms`));
    entry.session.deliver(
      errorResponse(
        entry.clientId,
        ErrorCode.RequestTimeout,
        `upstream ${this.name} did not answer within ${timeout} ms`,
      ),
    );
  }

  private unsubscribe(session: MuxSession, uri: string, request: JSONRPCRequest | undefined): void {
    const last = this.dropSubscriber(session, uri);
    if (request && last) this.forward(session, request);
    else if (request) session.deliver({ jsonrpc: '2.0', id: request.id, result: {} });
    else if (last) this.internalRequest('resources/unsubscribe', { uri });
  }

  /** Forgets that `session` subscribed to `uri`; whether it was the last session that had. */
  private dropSubscriber(session: MuxSession, uri: string): boolean {
    session.subscriptions?.delete(uri);
    const set = this.subscribers.get(uri);
    set?.delete(session);
    const last = set !== undefined && set.size === 0;
    if (last) this.subscribers.delete(uri);
    return last;
  }

  private internalRequest(method: string, params: Record<string, unknown>): void {
    // String ids never collide with the numbers given to client requests; their answers are dropped.
    this.sendUpstream({ jsonrpc: '2.0', id: `mcp-proxy-${this.nextUpstreamId++}`, method, params });
  }

  /**
   * The sessions with calls in flight. Over stdio, what a child sends unasked (a log line, a sampling
   * request) names no client request: when exactly one session has calls in flight, that work is the only
   * thing it can be about. With several there is no telling, with none it is about no call, and a guess
   * would hand one client's data to another.
   */
  private busySessions(): MuxSession[] {
    return [...this.sessions].filter((s) => s.inFlight.size > 0);
  }

  private findUpstreamId(session: MuxSession, clientId: RequestId): number | undefined {
    for (const id of session.inFlight) if (this.pending.get(id)?.clientId === clientId) return id;
    return undefined;
  }

  /**
   * The upstream's own initialize result, with the protocol version agreed with this client: the client's,
   * when the SDK knows it and it is no newer than the one the child agreed to (versions are dates); else
   * the child's. A client asking for a newer version than the child speaks must not be told it has it.
   */
  private initializeFor(request: JSONRPCRequest): InitializeResult {
    const result = this.initializeResult!;
    const asked = request.params?.protocolVersion;
    const protocolVersion =
      typeof asked === 'string' &&
      SUPPORTED_PROTOCOL_VERSIONS.includes(asked) &&
      asked <= result.protocolVersion
        ? asked
        : result.protocolVersion;
    return { ...result, protocolVersion };
  }
}

/** The capability a client must have declared to be sent each request of the upstream's. */
const CAPABILITY_FOR: Readonly<Record<string, keyof ClientCapabilities>> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

function cancelled(requestId: RequestId, reason: string): JSONRPCNotification {
  return { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } };
}

/** One client session of a Multiplexer. */
class MuxSession implements SessionChannel {
  /** Upstream ids of this session's requests in flight. */
  readonly inFlight = new Set<number>();
  /** Made at the first subscription: most sessions never subscribe, and an empty Set costs 150 bytes. */
  subscriptions: Set<string> | undefined;
  /** What the client declared at its initialize: the upstream's requests it may be sent. */
  capabilities: ClientCapabilities | undefined;
  listener?: ChannelListener;

  constructor(private readonly mux: Multiplexer) {}

  send(message: JSONRPCMessage): void {
    this.mux.fromClient(this, message);
  }

  close(): void {
    this.mux.closeSession(this);
  }

  deliver(message: JSONRPCMessage, relatedRequestId?: RequestId): void {
    this.listener?.deliver(message, relatedRequestId);
  }

  /** The client id of this session's only request in flight, if it has exactly one. */
  soleInFlightClientId(pending: ReadonlyMap<number, PendingRequest>): RequestId | undefined {
    if (this.inFlight.size !== 1) return undefined;
    const [id] = this.inFlight;
    return pending.get(id!)?.clientId;
  }
}
