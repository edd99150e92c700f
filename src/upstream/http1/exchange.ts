import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { holdWrites } from '../../hold-writes.js';
import { ErrorCode, errorBody } from '../jsonrpc.js';
import { RequestIdPeek, type JsonRpcId } from '../request-id-peek.js';
import type { Connection, ConnectionPool, ConnectionUser } from './connection-pool.js';
import { chunkHead, LAST_CHUNK, requestHead, type BodyFraming } from './request-head.js';
import { ResponseParser, type ResponseHead } from './response-parser.js';

/** Connection-scoped headers (RFC 9110 §7.6.1, plus the legacy Proxy-Connection): never relayed. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Upstream response fields that stop here (decision 0042). Every server is served on the proxy's one
 * origin, so what one server says about that origin would hold for all the others and for the proxy
 * itself: a cookie (the proxy never passes cookies on), CORS grants, HSTS, Clear-Site-Data, Alt-Svc.
 * WWW-Authenticate would read as the proxy's own challenge, pointing a client's OAuth discovery wherever the
 * upstream likes; Location, wherever a redirect-following client would resend its request (a redirect is
 * answered 502 anyway). Server names the upstream's software; X-Request-Id is the proxy's, set on every
 * answer and written in its access log.
 */
const UPSTREAM_ONLY: ReadonlySet<string> = new Set([
  'set-cookie',
  'www-authenticate',
  'location',
  'strict-transport-security',
  'clear-site-data',
  'alt-svc',
  'server',
  'x-request-id',
]);

/** CORS response fields (`Access-Control-Allow-Origin` and the rest): the proxy's origin is not theirs. */
const CORS_PREFIX = 'access-control-';

/**
 * How long response headers wait for the first chunk of the body before they go out alone. With the body,
 * they cost no write of their own and wake the client once. Alone, they tell an SSE client that its stream
 * is open, which for a GET stream may be long before its first event: that must not wait for the event.
 * The rule is the same for every content type, since a JSON body normally comes with its headers anyway.
 * An upstream that writes its headers apart from the body (the SDK's server does, for every answer) often
 * has them read here a few microseconds before the body, in a read of their own; a millisecond covers that
 * and delays nothing a client can act on: it cannot finish reading an answer before the body arrives.
 */
const HEADERS_WAIT_MS = 1;

/** What an exchange needs of the upstream it belongs to. */
export interface ExchangeContext {
  /** The server's name, for messages. */
  name: string;
  pool: ConnectionPool;
  /** The request target on the connection: a path, or a whole URL for a forwarding proxy. */
  path: string;
  /** How long the upstream may take to start its response; 0: no limit. */
  timeoutMs: number;
  /** The largest request body passed on, when it is limited. */
  maxBodyBytes: number | undefined;
  /** See `EgressConnection.proxyRefusal`. */
  proxyRefusal?: (status: number, reason: string) => Error | undefined;
  /** Records an upstream failure and gives its message back. */
  failed(message: string): string;
}

/** What the upstream hears of one exchange. */
export interface ExchangeHooks {
  /** The upstream's response head has arrived: its status, and the session id it carries. */
  answered(status: number, sessionId: string | undefined): void;
  /** The exchange is over: its response has closed, or it was answered here. */
  done(): void;
}

/** Why the proxy itself ended an exchange: decides the answer, and whether it counts as a failure. */
export type AbortReason = 'timeout' | 'client' | 'stop';

/**
 * One request passed through to the upstream on a connection of its own for the time being, and the
 * response relayed back as it arrives. The request goes out as one write when its body is already read
 * (the common case: a small POST arrives with its headers), streamed otherwise. The response is parsed
 * here (`ResponseParser`), and what one read brings leaves in one write: the client's socket is corked
 * while a read is parsed, so the headers, the body and the end of a short answer go out together.
 */
export class Exchange implements ConnectionUser {
  private readonly peek: RequestIdPeek;
  private readonly framing: BodyFraming;
  private connection: Connection | undefined;
  private parser: ResponseParser | undefined;
  private head: ResponseHead | undefined;
  private keepAliveSeconds: number | undefined;
  private abortedFor: AbortReason | undefined;
  /** The reason the response broke off, once the connection ends early. */
  private cut: Error | undefined;
  private requestSent = false;
  /** The response head went to the client's response (writeHead): from then on, a failure cuts it. */
  private headWritten = false;
  private bodyStarted = false;
  private waitingForClient = false;
  private over = false;
  private finished = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private headersAlone: NodeJS.Timeout | undefined;

  private readonly body: Buffer | undefined;

  constructor(
    private readonly context: ExchangeContext,
    private readonly hooks: ExchangeHooks,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    const body = wholeBody(req);
    this.body = body;
    this.peek = new RequestIdPeek(req, body);
    this.framing = framingOf(req, body);
    // Only the wait for the response head is bounded: a stream that has started may run as long as it likes.
    if (context.timeoutMs > 0) {
      this.timer = setTimeout(() => this.abort('timeout'), context.timeoutMs);
    }
    res.on('close', () => {
      // Closed unfinished: the client left, unless the upstream's response broke first and took the
      // client's with it.
      if (!res.writableFinished && this.cut === undefined) this.abort('client');
      this.finish();
    });
    req.on('error', () => this.abort('client'));
  }

  /** Sends the request, with these header fields, once a connection is there. */
  start(fields: OutgoingHttpHeaders): void {
    const { body, context } = this;
    const limit = context.maxBodyBytes;
    if (body !== undefined && limit !== undefined && body.length > limit) return this.refuseBody(limit);
    const head = requestHead(this.req.method ?? 'GET', context.path, fields, this.framing);
    context.pool.acquire(this, (error, connection) => {
      if (error) return this.unanswered(error);
      this.connection = connection!;
      if (this.abortedFor !== undefined) return this.drop();
      this.send(head, body);
    });
  }

  /** Ends the exchange from this side: the request goes no further, and the client is told why if it waits. */
  abort(reason: AbortReason): void {
    if (this.over) return;
    this.abortedFor ??= reason;
    if (this.connection) this.drop();
    else this.unanswered(new Error(reason));
  }

  data(chunk: Buffer): void {
    const { res } = this;
    const parser = this.parser!;
    let failure: Error | undefined;
    const letGo = holdWrites(res);
    try {
      parser.push(chunk);
    } catch (error) {
      failure = error as Error;
    }
    // Let go first, even on a failure: what was relayed before it goes out ahead of the cut.
    letGo();
    if (failure !== undefined) {
      // Bytes after a complete response (the client has its answer), or after the exchange was settled
      // otherwise (an egress proxy's refusal): only the connection is done for.
      if (parser.ended || this.over) this.dropQuietly();
      else this.invalidResponse(failure);
    } else if (parser.ended) {
      // Given back only now that the read is parsed: nothing of it may reach the connection's next exchange.
      this.release();
    } else if (this.headWritten && !this.bodyStarted && !this.over && this.headersAlone === undefined) {
      this.headersAlone = setTimeout(() => res.flushHeaders(), HEADERS_WAIT_MS);
    }
  }

  eof(): void {
    try {
      this.parser!.close();
    } catch (error) {
      this.cut = error as Error;
    }
  }

  closed(error: Error | undefined): void {
    this.connection = undefined;
    if (this.over) return;
    const why = error ?? this.cut ?? new Error('the connection closed before the response ended');
    if (this.head === undefined) return this.unanswered(why);
    // The response broke off: the client's must not look complete.
    this.cut = why;
    this.over = true;
    if (this.abortedFor === undefined)
      this.context.failed(`upstream ${this.context.name} cut its response: ${why.message}`);
    this.res.destroy();
  }

  drain(): void {
    if (!this.over) this.req.resume();
  }

  private send(head: string, body: Buffer | undefined): void {
    const { socket } = this.connection!;
    this.parser = new ResponseParser(this.req.method ?? 'GET', {
      head: (head) => this.relayHead(head),
      body: (chunk) => this.relayBody(chunk),
      end: () => this.relayEnd(),
    });
    if (body !== undefined) {
      socket.cork();
      socket.write(head, 'latin1');
      if (body.length > 0) socket.write(body);
      socket.uncork();
      this.requestSent = true;
      return;
    }
    socket.write(head, 'latin1');
    this.streamBody();
  }

  /** Streams a body that has not all arrived yet, as it arrives, at the pace the upstream reads it. */
  private streamBody(): void {
    const { req, framing } = this;
    const socket = this.connection!.socket;
    const limit = framing === 'chunked' ? this.context.maxBodyBytes : undefined;
    let received = 0;
    this.peek.listen();
    req.on('data', (chunk: Buffer) => {
      if (this.over || this.requestSent) return;
      received += chunk.length;
      // A declared length over the limit was refused before; a body without one is counted here.
      if (limit !== undefined && received > limit) return this.refuseBody(limit);
      let more: boolean;
      if (framing === 'chunked') {
        socket.cork();
        socket.write(chunkHead(chunk.length), 'latin1');
        socket.write(chunk);
        more = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else more = socket.write(chunk);
      if (!more) req.pause();
    });
    req.on('end', () => {
      if (this.over || this.requestSent) return;
      if (framing === 'chunked') socket.write(LAST_CHUNK, 'latin1');
      this.requestSent = true;
    });
  }

  private relayHead(head: ResponseHead): void {
    if (this.over) return;
    clearTimeout(this.timer);
    const { context, res } = this;
    const refusal = context.proxyRefusal?.(head.status, head.reason);
    if (refusal) {
      // The egress proxy's answer, not the upstream's: the client is told, as for an unreachable upstream.
      this.dropQuietly();
      return this.unanswered(refusal);
    }
    const unrelayable = notRelayed(head, context.name);
    if (unrelayable !== undefined) {
      // Still an answer of the upstream's: a workload-identity token it refused is not sent again.
      this.hooks.answered(head.status, undefined);
      this.dropQuietly();
      return this.unanswered(new Error(unrelayable), unrelayable);
    }
    this.head = head;
    this.peek.forget();
    const { headers, sessionId, keepAliveSeconds, contentType } = clientResponseHeaders(head);
    this.keepAliveSeconds = keepAliveSeconds;
    this.hooks.answered(head.status, sessionId);
    try {
      res.writeHead(head.status, head.reason, headers);
      this.headWritten = true;
    } catch (error) {
      // A header that Node's server refuses to send (a control character in a value, say).
      return this.invalidResponse(error as Error);
    }
    const failure = failedAnswer(head, this.req.method, contentType, context.name);
    if (failure !== undefined) context.failed(failure);
  }

  private relayBody(chunk: Buffer): void {
    if (this.over) return;
    if (!this.bodyStarted) {
      this.bodyStarted = true;
      clearTimeout(this.headersAlone);
    }
    // A client that reads slowly holds the upstream back.
    if (!this.res.write(chunk) && !this.waitingForClient) {
      this.waitingForClient = true;
      this.connection?.socket.pause();
      this.res.once('drain', () => {
        this.waitingForClient = false;
        this.connection?.socket.resume();
      });
    }
  }

  private relayEnd(): void {
    if (this.over) return;
    clearTimeout(this.headersAlone);
    this.over = true;
    this.res.end();
  }

  /**
   * The response is complete: the connection goes back to the pool if it may carry another exchange, which
   * needs the whole request to have gone out too (an upstream may answer before reading it all).
   */
  private release(): void {
    const { connection } = this;
    if (!connection) return;
    if (
      !this.requestSent ||
      !this.head?.keepAlive ||
      this.abortedFor !== undefined ||
      // A bodiless answer is where a faulty server most often sends a body anyway, perhaps a moment later,
      // when it would be read as the next exchange's response. MCP hardly ever sees one.
      this.head.bodiless
    )
      return this.dropQuietly();
    this.connection = undefined;
    this.context.pool.release(connection, this.keepAliveSeconds);
  }

  /** Closes the connection without hearing more of it: the exchange ends here. */
  private drop(): void {
    if (!this.connection) return;
    this.dropQuietly();
    if (!this.over) this.closed(undefined);
  }

  /** The upstream's response cannot be read or relayed: 502 if the client has none yet, else it is cut. */
  private invalidResponse(error: Error): void {
    if (this.over) return this.dropQuietly();
    const { context, res } = this;
    const message = context.failed(`upstream ${context.name} sent an invalid response: ${error.message}`);
    this.over = true;
    this.dropQuietly();
    if (this.headWritten) {
      this.cut = error;
      res.destroy();
      return;
    }
    // writeHead may have set some of the upstream's headers before it threw: none belong to this answer.
    for (const name of res.getHeaderNames()) if (name !== 'x-request-id') res.removeHeader(name);
    answerError(res, 502, null, message, ErrorCode.UpstreamUnavailable);
    this.finish();
  }

  /** Closes the connection, and only that. */
  private dropQuietly(): void {
    // The rest of a body still arriving goes nowhere now, but must still be read, or the client's connection
    // stalls (it may have been paused for the upstream). Also when the connection has closed by itself.
    if (!this.requestSent) this.req.resume();
    const { connection } = this;
    if (!connection) return;
    this.connection = undefined;
    connection.user = undefined;
    connection.socket.destroy();
  }

  /**
   * Answers a request that got no response: aborted here (timeout, stop, client gone), or failed; 502 with
   * `failure`, which says what went wrong, when it failed.
   */
  private unanswered(
    error: Error,
    failure = `upstream ${this.context.name} unreachable: ${error.message}`,
  ): void {
    if (this.over) return;
    this.over = true;
    this.dropQuietly();
    const { context, res } = this;
    if (this.abortedFor === 'client') return this.finish();
    void this.peek.id().then((id) => {
      if (res.headersSent) return this.finish();
      if (this.abortedFor === 'stop') {
        answerError(res, 503, id, `upstream ${context.name} is stopped`, ErrorCode.UpstreamUnavailable);
      } else if (this.abortedFor === 'timeout') {
        const message = `upstream ${context.name} timed out: no response within ${context.timeoutMs} ms`;
        answerError(res, 504, id, context.failed(message), ErrorCode.RequestTimeout);
      } else {
        answerError(res, 502, id, context.failed(failure), ErrorCode.UpstreamUnavailable);
      }
      this.finish();
    });
  }

  /** A body past `limit` bytes: 413, and nothing more of it goes on. */
  private refuseBody(limit: number): void {
    this.abortedFor = 'client';
    this.over = true;
    this.dropQuietly();
    if (this.res.headersSent) this.res.destroy();
    else answerError(this.res, 413, null, `request body exceeds ${limit} bytes`, ErrorCode.InvalidRequest);
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    clearTimeout(this.headersAlone);
    this.hooks.done();
  }
}

export function answerError(
  res: ServerResponse,
  status: number,
  id: JsonRpcId,
  message: string,
  code: number,
): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(errorBody(code, message, id));
}

const NO_BODY = Buffer.alloc(0);

/**
 * The whole request body, when all of it has been read and none consumed; undefined otherwise. All of it:
 * the message is complete, or holds as many bytes as its Content-Length (Node's parser hands the body over,
 * and runs what waits for it, before it marks the message complete; and never hands over more than
 * Content-Length). Read out here, the request is then resumed, so that it still ends.
 */
function wholeBody(req: IncomingMessage): Buffer | undefined {
  if (req.readableFlowing !== null || req.readableDidRead) return undefined;
  const declared = req.headers['content-length'];
  if (!req.complete && (declared === undefined || Number(declared) !== req.readableLength)) return undefined;
  const body = (req.read() as Buffer | null) ?? NO_BODY;
  req.resume();
  return body;
}

/** How the body goes on: whole with its length; streamed as the client framed it; or not at all. */
function framingOf(req: IncomingMessage, body: Buffer | undefined): BodyFraming {
  const declared = req.headers['content-length'];
  const framed = declared !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (body !== undefined) return body.length > 0 || framed ? { length: body.length } : 'none';
  if (declared !== undefined) return { length: Number(declared) };
  return framed ? 'chunked' : 'none';
}

/**
 * Why an upstream answer is not relayed but replaced by a 502 (decision 0041), if it is not. A redirect:
 * a client that followed it would resend its request, and the proxy's credentials for the upstream would go
 * wherever it points; the proxy does not follow it either. A 401 or 403: the upstream refused the
 * credentials the proxy holds for it (configured headers, workload identity), which no client can fix, and
 * relayed they would read as the proxy refusing the client's own.
 */
function notRelayed({ status, fields }: ResponseHead, name: string): string | undefined {
  if (status === 401 || status === 403) {
    return `upstream ${name} refused the proxy's credentials for it (${status}): check its headers or workload identity`;
  }
  // 304 is no redirect: only a conditional request gets one, and it points nowhere.
  if (status < 300 || status >= 400 || status === 304) return undefined;
  const location = fields.find(([field]) => field.toLowerCase() === 'location')?.[1];
  return (
    `upstream ${name} redirected (${status}) to ${redirectTarget(location)}; ` +
    "the proxy does not follow redirects: set the server's url to where it is served"
  );
}

/**
 * What is wrong with an answer that is relayed as it is (the client may want its body) but is still the
 * upstream failing: a 5xx, or a successful answer to a POST that is neither of the two an MCP client can
 * read (a login page, a proxy's HTML). A 202 carries no message, and a 4xx is most often the client's doing.
 * `contentType`: the first Content-Type, lowercased.
 */
function failedAnswer(
  { status, bodiless, contentLength }: ResponseHead,
  method: string | undefined,
  contentType: string | undefined,
  name: string,
): string | undefined {
  if (status >= 500) return `upstream ${name} answered ${status}`;
  // No content type: most often no body either (a 200 to a notification, chunked and empty), which the
  // head alone cannot tell from a body.
  if (method !== 'POST' || status >= 300 || status === 202 || bodiless || contentLength === 0)
    return undefined;
  if (contentType === undefined) return undefined;
  if (contentType.startsWith('application/json') || contentType.startsWith('text/event-stream')) {
    return undefined;
  }
  const type = contentType.split(';', 1)[0]!.trim().slice(0, 100);
  return `upstream ${name} answered a POST (${status}) with content type ${type}, neither application/json nor text/event-stream`;
}

/** Resolves relative redirects, to tell them from absolute ones: no host is named so. */
const RELATIVE_BASE = 'http://relative.invalid';

/** Where a redirect points, as scheme, host and path: never a query or userinfo, which may hold secrets. */
function redirectTarget(location: string | undefined): string {
  if (location === undefined) return 'no Location';
  let url: URL;
  try {
    url = new URL(location, RELATIVE_BASE);
  } catch {
    return 'an invalid Location';
  }
  return url.origin === RELATIVE_BASE ? url.pathname : `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * The response headers the client gets: the upstream's end-to-end fields (a repeated field stays
 * repeated), and `X-Accel-Buffering: no` on an SSE stream, since nginx in front would otherwise hold its
 * events back until its buffer fills. Also what this proxy reads of them: the session id, the content type, and how long
 * the upstream keeps an idle connection open.
 */
function clientResponseHeaders({ fields, contentLength }: ResponseHead): {
  headers: OutgoingHttpHeaders;
  sessionId: string | undefined;
  keepAliveSeconds: number | undefined;
  contentType: string | undefined;
} {
  let named: string[] | undefined;
  let keepAliveSeconds: number | undefined;
  for (const [name, value] of fields) {
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      named ??= [];
      for (const token of value.split(',')) named.push(token.trim().toLowerCase());
    } else if (lower === 'keep-alive') {
      const timeout = /(?:^|[,\s])timeout\s*=\s*(\d+)/i.exec(value)?.[1];
      if (timeout !== undefined) keepAliveSeconds = Number(timeout);
    }
  }
  // No prototype: a field named `constructor` or `__proto__` is a field like any other.
  const headers: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders;
  let sessionId: string | undefined;
  for (const [name, value] of fields) {
    const lower = name.toLowerCase();
    if (
      HOP_BY_HOP.has(lower) ||
      UPSTREAM_ONLY.has(lower) ||
      lower.startsWith(CORS_PREFIX) ||
      named?.includes(lower)
    )
      continue;
    // As the parser read it: once, a number (the upstream may have listed it, `2, 2`, which clients refuse).
    if (lower === 'content-length') continue;
    const previous = headers[lower];
    if (previous === undefined) headers[lower] = value;
    else headers[lower] = Array.isArray(previous) ? [...previous, value] : [String(previous), value];
    if (lower === 'mcp-session-id') sessionId ??= value;
  }
  // Set last, over any of the upstream's own: one value, and the one that keeps nginx from buffering.
  const type = headers['content-type'];
  const contentType =
    type === undefined ? undefined : String(Array.isArray(type) ? type[0] : type).toLowerCase();
  if (contentType?.startsWith('text/event-stream')) headers['x-accel-buffering'] = 'no';
  if (contentLength !== undefined) headers['content-length'] = String(contentLength);
  return { headers, sessionId, keepAliveSeconds, contentType };
}
