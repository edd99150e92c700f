import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ChannelListener, SessionChannel } from '../upstream/channel.js';
import { ErrorCode, errorResponse, isRequest, isResponse } from '../upstream/jsonrpc.js';
import { SseStream, type SseTiming } from './sse-stream.js';
import { EMPTY_ANSWER_HEADERS, refusal, sseHeaders, type Refusal } from './wire.js';

/** The SDK's keep-alive interval. */
const KEEP_ALIVE_MS = 15_000;
/** A POST's answer keeps its headers back for the first message this long (see SseStream). */
const POST_TIMING: SseTiming = { headersAfterMs: 100, keepAliveMs: KEEP_ALIVE_MS };
/** A GET stream has nothing to wait for: the client waits to see it open. */
const GET_TIMING: SseTiming = { headersAfterMs: 0, keepAliveMs: KEEP_ALIVE_MS };

/** What a session tells the endpoint that holds it: one object per endpoint, shared by its sessions. */
export interface SessionHost {
  /** The upstream ended the session: the endpoint forgets it and closes it. */
  ended(session: ClientSession): void;
  /** A message the client can no longer be given (its stream is gone). */
  undeliverable(session: ClientSession, message: JSONRPCMessage): void;
  /** One of the session's streams was cut with `unread` bytes its client had not taken. */
  notReading(session: ClientSession, unread: number): void;
}

/**
 * One client session of the Streamable HTTP transport, in front of its channel to the upstream: which
 * HTTP response carries each message back. A response goes on the stream of the POST that carried its
 * request; a message related to a request (progress, a server-to-client request during a call) goes on
 * that request's stream; anything else on the session's GET stream, or nowhere when none is open, as the
 * spec allows; but a request of the upstream's is never dropped (see deliverRequest). No event ids are
 * kept, so streams cannot be resumed: a client that lost one asks again.
 */
export class ClientSession implements ChannelListener {
  lastActivity = Date.now();
  /** The stream each request still waiting for its response will be answered on. */
  private readonly waiting = new Map<RequestId, SseStream>();
  /** The GET stream, when the client holds one open. */
  private listening: SseStream | undefined;
  /** How many streams are open now, GET included: a count, not a Set, to keep an idle session small. */
  private openStreams = 0;
  private readonly headers: OutgoingHttpHeaders;

  constructor(
    readonly id: string,
    private readonly channel: SessionChannel,
    private readonly host: SessionHost,
  ) {
    this.headers = sseHeaders(id);
    channel.listener = this;
  }

  /** Whether nothing is being served for this session now: a held GET stream counts as work. */
  get idle(): boolean {
    return this.openStreams === 0;
  }

  /**
   * The messages of one POST, already checked. Only notifications and responses: 202 and done. Any
   * request: an SSE answer that ends with the last of their responses. A request id used twice (in the
   * batch, or by a request still waiting) is refused: its responses could not be told apart.
   */
  post(res: ServerResponse, messages: JSONRPCMessage[]): Refusal | undefined {
    this.lastActivity = Date.now();
    const requestIds = messages.filter(isRequest).map((request) => request.id);
    // (The Set only for a batch: a single request cannot repeat itself, and this runs for every call.)
    const repeated = requestIds.length > 1 && new Set(requestIds).size < requestIds.length;
    if (repeated || requestIds.some((id) => this.waiting.has(id))) {
      return refusal(
        400,
        ErrorCode.InvalidRequest,
        'Invalid Request: a request id is already in use in this session',
      );
    }
    // The client left while the proxy was busy (reading its body, opening its session): its requests
    // would be answered to no one, and a 'close' listener added now would never fire.
    if (res.destroyed) {
      for (const message of messages) if (!isRequest(message)) this.toUpstream(message);
      return undefined;
    }
    if (requestIds.length === 0) {
      for (const message of messages) this.toUpstream(message);
      res.writeHead(202, EMPTY_ANSWER_HEADERS).end();
      return undefined;
    }
    const stream = this.track(
      res,
      new SseStream(res, this.headers, requestIds.length, POST_TIMING),
      requestIds,
    );
    // Registered before sending: an upstream may answer within `send` (the proxy answers some itself).
    for (const id of requestIds) this.waiting.set(id, stream);
    for (const message of messages) this.toUpstream(message);
    return undefined;
  }

  /**
   * A client's message on its way upstream. A cancellation also releases its request's stream: the
   * upstream owes it no answer now, and the SDK's client does not close that stream itself, so it would
   * stay open (and the session busy, never reaped) for as long as the client lives.
   */
  private toUpstream(message: JSONRPCMessage): void {
    if ('method' in message && message.method === 'notifications/cancelled' && !('id' in message)) {
      const id = message.params?.requestId as RequestId | undefined;
      const stream = id === undefined ? undefined : this.waiting.get(id);
      if (stream) {
        this.waiting.delete(id!);
        stream.forgo();
      }
    }
    try {
      this.channel.send(message);
    } catch (error) {
      // Writing it out (JSON.stringify) recurses: a message nested deeper than the stack, which parsing it
      // did not mind, cannot be passed on. It is the client's, and so is the answer.
      if (!(error instanceof RangeError)) throw error;
      if (isRequest(message)) {
        this.deliver(
          errorResponse(
            message.id,
            ErrorCode.InvalidRequest,
            'Invalid Request: nested too deeply to pass on',
          ),
        );
      }
    }
  }

  /**
   * A GET: the session's stream for messages that belong to no request. The newest one carries them and
   * ends the one before: a client that lost its connection without the proxy seeing it go (a NAT timing
   * out) opens another, which must not be refused for the one it can no longer read.
   */
  listen(res: ServerResponse): void {
    this.lastActivity = Date.now();
    if (res.destroyed) return; // the client left while its access was checked
    this.listening?.end();
    this.listening = this.track(res, new SseStream(res, this.headers, 0, GET_TIMING), []);
  }

  /**
   * Ends every stream and lets the upstream know the session is over. Each request still waiting is
   * answered with an error saying `why`: a client given only the end of its stream would wait out its own
   * timeout. A stream that is open but neither waiting nor listening has answered all it owed and ended
   * already.
   */
  close(why: string): void {
    for (const [id, stream] of this.waiting)
      stream.respond(errorResponse(id, ErrorCode.UpstreamUnavailable, why));
    this.waiting.clear();
    this.listening?.end();
    this.channel.close();
  }

  /** A message from the upstream, onto the stream that should carry it. */
  deliver(message: JSONRPCMessage, relatedRequestId?: RequestId): void {
    if (isResponse(message)) {
      const { id } = message;
      const stream = id === undefined ? undefined : this.waiting.get(id);
      if (id === undefined || !stream) return this.host.undeliverable(this, message);
      this.waiting.delete(id);
      return stream.respond(message);
    }
    // An error without an id: no one to tell.
    if (!('method' in message)) return this.host.undeliverable(this, message);
    const related = relatedRequestId === undefined ? this.listening : this.waiting.get(relatedRequestId);
    if (related) return related.send(message);
    if (isRequest(message)) return this.deliverRequest(message);
    if (relatedRequestId !== undefined) this.host.undeliverable(this, message);
  }

  /**
   * A request of the upstream's (sampling, elicitation) that no one stream is known to be for: several of
   * the client's requests in flight, and no GET stream. Any stream the client is reading will do, since
   * the client answers it with a POST of its own. With none, the upstream is answered at once: it would
   * otherwise wait for its own timeout, holding the call that asked.
   */
  private deliverRequest(request: JSONRPCRequest): void {
    for (const stream of [this.listening, ...this.waiting.values()])
      if (stream && !stream.gone) return stream.send(request);
    this.host.undeliverable(this, request);
    this.channel.send(
      errorResponse(
        request.id,
        ErrorCode.InternalError,
        `mcp-proxy: the client has no open stream to receive ${request.method} on`,
      ),
    );
  }

  upstreamClosed(): void {
    this.host.ended(this);
  }

  private track(res: ServerResponse, stream: SseStream, requestIds: RequestId[]): SseStream {
    this.openStreams++;
    res.once('close', () => {
      // Answered, or the client went away: a request still waiting then has no one to answer.
      stream.stop();
      if (stream.cutUnread !== undefined) this.host.notReading(this, stream.cutUnread);
      this.openStreams--;
      for (const id of requestIds) if (this.waiting.get(id) === stream) this.waiting.delete(id);
      if (this.listening === stream) this.listening = undefined;
      this.lastActivity = Date.now();
    });
    return stream;
  }
}
