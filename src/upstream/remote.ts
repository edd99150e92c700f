import {
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../log.js';
import type { Environment } from '../manifest/interpolate.js';
import type { RemoteServerSpec } from '../manifest/types.js';
import { egressConnection } from './egress-connection.js';
import { egressRoute } from './egress-proxy.js';
import { ErrorCode, errorBody } from './jsonrpc.js';
import type { Upstream, UpstreamState } from './types.js';

type JsonRpcId = string | number | null;

const UPSTREAM_ERROR = ErrorCode.UpstreamUnavailable;
const UPSTREAM_TIMEOUT = ErrorCode.RequestTimeout;

/** Connection-scoped headers (RFC 9110 §7.6.1, plus the legacy Proxy-Connection): never relayed. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
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
 * Client headers that stop here. Host names the proxy, not the upstream: Node then sends the upstream's
 * own, unless a configured Host says otherwise. The client's Authorization is a token for the proxy, and
 * MCP's security guidance forbids passing it through. Expect was already answered by the proxy's own HTTP
 * server, which sent the 100 Continue.
 */
const CLIENT_ONLY: ReadonlySet<string> = new Set(['host', 'authorization', 'expect']);
const NONE: ReadonlySet<string> = new Set();

/** Bodies up to this size are also kept aside as they stream past, so that an error answer can carry their id. */
const PEEK_LIMIT = 64 * 1024;
/** How long an error answer waits for the rest of a small body (to read its id) before answering with id null. */
const PEEK_WAIT_MS = 1000;
/** Node fires a timer set for longer than this after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Copies the end-to-end headers: drops the hop-by-hop ones, those the Connection header names, and `also`. */
function endToEnd(headers: IncomingHttpHeaders, also: ReadonlySet<string>): OutgoingHttpHeaders {
  // Runs twice per exchange: the Connection header (most often just `keep-alive`) is split only if present.
  const named = headers.connection?.split(',').map((token) => token.trim().toLowerCase());
  const kept: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || also.has(name) || named?.includes(name)) continue;
    kept[name] = value;
  }
  return kept;
}

function upstreamRequestHeaders(
  client: IncomingHttpHeaders,
  added: OutgoingHttpHeaders,
  authorization: string | undefined,
): OutgoingHttpHeaders {
  const headers = endToEnd(client, CLIENT_ONLY);
  Object.assign(headers, added);
  // The workload-identity token wins over a configured Authorization: the manifest asked for the identity.
  if (authorization !== undefined) headers.authorization = authorization;
  return headers;
}

function clientResponseHeaders(upstream: IncomingMessage): OutgoingHttpHeaders {
  const headers = endToEnd(upstream.headers, NONE);
  // nginx in front would otherwise hold SSE events back until its buffer fills.
  if (upstream.headers['content-type']?.toLowerCase().startsWith('text/event-stream')) {
    headers['x-accel-buffering'] = 'no';
  }
  return headers;
}

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

/**
 * Relays the upstream's response body to the client as it arrives, and calls `closed` once the client's
 * response has closed: complete, or cut by either side (an upstream that cuts its stream cuts the client's,
 * which then never looks complete). What arrives together leaves together: from a read's first chunk the
 * client's socket is corked until the end of that turn of the event loop, or until the response ends
 * (end() uncorks), so the headers, the body and the end of a short answer go out in one write. Written out
 * rather than with stream.pipeline, which allocates an AbortController per call and aborts it when done
 * (a DOMException with a stack trace: a tenth of the passthrough's CPU), or pipe(), which adds listeners
 * this needs none of.
 */
function relay(upstreamRes: IncomingMessage, res: ServerResponse, closed: () => void): void {
  const headersAlone = setTimeout(() => res.flushHeaders(), HEADERS_WAIT_MS);
  let corked = false;
  const uncork = () => {
    corked = false;
    res.uncork();
  };
  upstreamRes.on('data', (chunk: Buffer) => {
    clearTimeout(headersAlone);
    if (!corked) {
      corked = true;
      res.cork();
      setImmediate(uncork);
    }
    if (!res.write(chunk)) upstreamRes.pause();
  });
  res.on('drain', () => upstreamRes.resume());
  upstreamRes.on('end', () => {
    clearTimeout(headersAlone);
    res.end();
  });
  upstreamRes.on('error', () => res.destroy());
  res.on('close', () => {
    clearTimeout(headersAlone);
    closed();
  });
}

function answerError(
  res: ServerResponse,
  status: number,
  id: JsonRpcId,
  message: string,
  code: number,
): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(errorBody(code, message, id));
}

/**
 * Keeps a copy of the client's body as it streams to the upstream, never holding it back, as long as it
 * stays small: an error answer can then name the request it answers. Larger bodies (and batches,
 * notifications, anything not a single JSON-RPC request) are answered with id null.
 */
class RequestIdPeek {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  private complete = false;
  private readonly settled: Promise<void>;

  constructor(private readonly req: IncomingMessage) {
    this.settled = new Promise((resolve) => {
      req.on('data', (chunk: Buffer) => {
        if (this.chunks === undefined) return;
        this.size += chunk.length;
        if (this.size > PEEK_LIMIT) {
          this.chunks = undefined;
          resolve();
        } else this.chunks.push(chunk);
      });
      req.on('end', () => {
        this.complete = true;
        resolve();
      });
      req.on('close', resolve);
    });
  }

  /** Once the upstream answers, no error answer will need the id: a long stream should not hold the copy. */
  forget(): void {
    this.chunks = undefined;
  }

  async id(): Promise<JsonRpcId> {
    // The upstream failed, so nobody else reads the rest of the body; reading it keeps the client's
    // connection usable, and a small body's id may still be in it.
    this.req.resume();
    await Promise.race([this.settled, sleep(PEEK_WAIT_MS, undefined, { ref: false })]);
    if (this.chunks === undefined || !this.complete) return null;
    try {
      const message: unknown = JSON.parse(Buffer.concat(this.chunks).toString('utf8'));
      if (typeof message !== 'object' || message === null || !('method' in message) || !('id' in message)) {
        return null;
      }
      return typeof message.id === 'string' || typeof message.id === 'number' ? message.id : null;
    } catch {
      return null;
    }
  }
}

/**
 * The remote server's sessions, counted from outside (best effort). A session id handed out in answer to a
 * POST that carried none opens one: only initialize does that. A DELETE, or a 404 for that id (the server
 * forgot it), closes it. Many clients never send DELETE, so a session unused for idleTimeout no longer
 * counts; otherwise the count, and this map, would only grow.
 */
class SessionLedger {
  private readonly lastUsed = new Map<string, number>();

  constructor(private readonly idleMs: () => number) {}

  has(id: string): boolean {
    return this.lastUsed.has(id);
  }

  observe(method: string | undefined, sent: unknown, status: number, received: unknown): void {
    const now = Date.now();
    if (typeof sent !== 'string') {
      if (method === 'POST' && status >= 200 && status < 300 && typeof received === 'string') {
        this.prune(now);
        this.lastUsed.set(received, now);
      }
    } else if (this.lastUsed.has(sent)) {
      if (status === 404 || (method === 'DELETE' && status >= 200 && status < 300))
        this.lastUsed.delete(sent);
      else this.lastUsed.set(sent, now);
    }
  }

  count(): number {
    this.prune(Date.now());
    return this.lastUsed.size;
  }

  private prune(now: number): void {
    const idleMs = this.idleMs();
    if (idleMs <= 0) return; // idleTimeout 0: sessions are never dropped for being unused
    for (const [id, at] of this.lastUsed) if (now - at > idleMs) this.lastUsed.delete(id);
  }
}

/** The workload identity's tokens for one server (its scope). */
export interface BearerTokens {
  /** The token to send next. Rejects with a message fit for a client when there is none. */
  next(): Promise<string>;
  /** The upstream answered 401 to a request that carried `token`: the next request should not send it again. */
  refused(token: string): void;
}

/**
 * A remote Streamable HTTP server, served by passing each request through to `spec.url`: bodies and SSE
 * streams are piped both ways as they arrive, never buffered. `handle` resolves when the exchange is over
 * (the response has ended or either side has gone), which for an SSE stream may be hours later.
 * With `identityTokens` (a server with `useWorkloadIdentity`), every request carries `Authorization: Bearer`
 * with the token they yield, and a request for which they yield none is answered here, never sent.
 */
export interface RemoteOptions {
  log?: Logger;
  /** Where bearer tokens come from, for a server with `useWorkloadIdentity`. */
  identityTokens?: BearerTokens;
  /** The largest request body passed on (`limits.maxBodyBytes`, which a reload may change). */
  maxBodyBytes?: () => number;
  /** The proxy's environment, for its egress proxy variables (HTTPS_PROXY, NO_PROXY…). None: no proxy. */
  env?: Environment;
}

export function createRemoteUpstream(spec: RemoteServerSpec, options: RemoteOptions = {}): Upstream {
  const { log = silentLogger, identityTokens, maxBodyBytes, env = {} } = options;
  const url = new URL(spec.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  // Decided once: url and headers never change for the life of this upstream (a change restarts it), nor
  // does the proxy's environment.
  const route = egressRoute(url, env);
  const {
    target,
    headers: proxyHeaders,
    proxyRefusal,
  } = egressConnection(url, route.kind === 'proxy' ? route.proxy : undefined);
  /** What every request gets on top of the client's: the configured headers, then the proxy's own. */
  const addedHeaders: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(spec.headers)) addedHeaders[name.toLowerCase()] = value;
  Object.assign(addedHeaders, proxyHeaders);
  const sessions = new SessionLedger(() => spec.idleTimeoutMs);
  /** Aborts every exchange still running, for stop(). */
  const inFlight = new Set<() => void>();
  let state: UpstreamState = 'starting';
  let lastError: string | undefined;

  const stoppedMessage = `upstream ${spec.name} is stopped`;

  /** Records an upstream failure (unreachable, timed out, cut mid-response) and gives its message back. */
  function failed(message: string): string {
    lastError = message;
    log.warn('upstream-failed', { server: spec.name, reason: message });
    return message;
  }

  /** `token`: the workload-identity token to send as `Authorization: Bearer`, for a server that has one. */
  function exchange(
    req: IncomingMessage,
    res: ServerResponse,
    token: string | undefined,
    done: () => void,
  ): void {
    let upstreamReq: ClientRequest;
    try {
      upstreamReq = send({
        ...target,
        method: req.method,
        headers: upstreamRequestHeaders(
          req.headers,
          addedHeaders,
          token === undefined ? undefined : `Bearer ${token}`,
        ),
      });
    } catch (error) {
      // Node validates headers here: a configured header value it refuses fails every request alike.
      const message = `upstream ${spec.name} request refused: ${(error as Error).message}`;
      answerError(res, 502, null, failed(message), UPSTREAM_ERROR);
      return done();
    }
    const peek = new RequestIdPeek(req);
    /** Why the proxy itself ended the exchange, if it did: decides the answer and whether it is a failure. */
    let abortedFor: 'timeout' | 'client' | 'stop' | undefined;
    const abort = (reason: 'timeout' | 'client' | 'stop') => {
      abortedFor ??= reason;
      upstreamReq.destroy();
    };
    const abortForStop = () => abort('stop');
    // Only the wait for response headers is bounded: a stream that has started may run as long as it likes.
    // timeout 0 means no limit.
    const timer =
      spec.timeoutMs > 0
        ? setTimeout(() => abort('timeout'), Math.min(spec.timeoutMs, MAX_TIMER_MS))
        : undefined;
    let responded = false;
    inFlight.add(abortForStop);
    const finish = () => {
      clearTimeout(timer);
      inFlight.delete(abortForStop);
      done();
    };

    let upstreamResponse: IncomingMessage | undefined;
    res.on('close', () => {
      // Closed unfinished: the client left, unless the upstream's response broke first and took the
      // client's with it (relay destroys the client's response only once the upstream's has its error).
      if (!res.writableFinished && !upstreamResponse?.errored) abort('client');
    });
    req.on('error', () => abort('client'));

    /** Answers a request that got no response: aborted here (timeout, stop, client gone), or failed. */
    const answerUnanswered = (error: Error) => {
      if (abortedFor === 'client') return finish();
      void peek.id().then((id) => {
        if (abortedFor === 'stop') answerError(res, 503, id, stoppedMessage, UPSTREAM_ERROR);
        else if (abortedFor === 'timeout') {
          const message = `upstream ${spec.name} timed out: no response within ${spec.timeoutMs} ms`;
          answerError(res, 504, id, failed(message), UPSTREAM_TIMEOUT);
        } else {
          const message = `upstream ${spec.name} unreachable: ${error.message}`;
          answerError(res, 502, id, failed(message), UPSTREAM_ERROR);
        }
        finish();
      });
    };

    upstreamReq.on('response', (upstreamRes) => {
      responded = true;
      clearTimeout(timer);
      const refusal = proxyRefusal?.(upstreamRes);
      if (refusal) {
        // The egress proxy's answer, not the upstream's: the client is told, as for an unreachable upstream.
        upstreamRes.resume();
        return answerUnanswered(refusal);
      }
      upstreamResponse = upstreamRes;
      peek.forget();
      const status = upstreamRes.statusCode ?? 502;
      sessions.observe(
        req.method,
        req.headers['mcp-session-id'],
        status,
        upstreamRes.headers['mcp-session-id'],
      );
      if (status === 401 && token !== undefined) identityTokens?.refused(token);
      try {
        res.writeHead(status, upstreamRes.statusMessage, clientResponseHeaders(upstreamRes));
      } catch (error) {
        // A status or header that Node's client accepted but its server refuses (a status below 100, say):
        // thrown here, in an event handler, it would end the process.
        upstreamReq.destroy();
        const message = `upstream ${spec.name} sent an invalid response: ${(error as Error).message}`;
        answerError(res, 502, null, failed(message), UPSTREAM_ERROR);
        return finish();
      }
      relay(upstreamRes, res, () => {
        const cut = upstreamRes.errored;
        if (cut && !res.writableFinished && abortedFor === undefined) {
          failed(`upstream ${spec.name} cut its response: ${cut.message}`);
        }
        finish();
      });
    });

    upstreamReq.on('error', (error) => {
      // Answered already: by the relay, which sees the same failure and reports it, or as a proxy's refusal.
      if (responded) return;
      answerUnanswered(error);
    });

    // The gateway refuses a declared Content-Length over the limit; a body sent without one is counted
    // here as it streams, and the exchange is answered 413 once it passes the limit.
    const limit = maxBodyBytes?.();
    if (limit === undefined) {
      req.pipe(upstreamReq);
      return;
    }
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limit || abortedFor !== undefined) return;
      abortedFor = 'client';
      req.unpipe(upstreamReq);
      upstreamReq.destroy();
      if (res.headersSent) res.destroy();
      else answerError(res, 413, null, `request body exceeds ${limit} bytes`, ErrorCode.InvalidRequest);
      finish();
    });
    req.pipe(upstreamReq);
  }

  /**
   * Answers a request that the proxy cannot send: 503, not 502, since the upstream was not asked and is not
   * at fault; the proxy cannot serve this server until its own setup works again, which may be temporary
   * (the token endpoint) or not (configuration).
   */
  async function notCalled(req: IncomingMessage, res: ServerResponse, reason: string): Promise<void> {
    const id = await new RequestIdPeek(req).id();
    answerError(res, 503, id, failed(`upstream ${spec.name} not called: ${reason}`), UPSTREAM_ERROR);
  }

  /** Gets the token first: a request without one never reaches the upstream. */
  async function exchangeWithIdentity(
    req: IncomingMessage,
    res: ServerResponse,
    tokens: BearerTokens,
  ): Promise<void> {
    let token: string;
    try {
      token = await tokens.next();
    } catch (error) {
      return notCalled(req, res, (error as Error).message);
    }
    // The token may have taken a while: the proxy may have stopped this server, or the client left.
    if (state === 'stopped') return answerError(res, 503, null, stoppedMessage, UPSTREAM_ERROR);
    if (res.destroyed) return;
    return new Promise((resolve) => exchange(req, res, token, resolve));
  }

  return {
    get spec() {
      return spec;
    },
    async start() {
      // Nothing to start: a remote server is not probed, its failures show per request.
      if (state !== 'starting') return { ok: true };
      state = 'ready';
      // Said once, so that whoever reads the logs knows which way this server's requests leave.
      if (route.kind === 'proxy') {
        const { name, variable } = route.proxy;
        log.info('upstream-egress-proxy', { server: spec.name, proxy: name, variable });
      } else if (route.kind === 'unusable') {
        log.error('upstream-egress-proxy-unusable', { server: spec.name, reason: route.reason });
      }
      return { ok: true };
    },
    owns: (sessionId) => sessions.has(sessionId),
    update(next) {
      // Only settings read per request change here (timeout, idle time); url and headers restart.
      if (next.kind === 'remote') spec = next;
    },
    handle(req, res) {
      if (state === 'stopped') {
        answerError(res, 503, null, stoppedMessage, UPSTREAM_ERROR);
        return Promise.resolve();
      }
      // Going around a proxy the environment asks for would be worse than not going at all.
      if (route.kind === 'unusable') return notCalled(req, res, route.reason);
      if (identityTokens) return exchangeWithIdentity(req, res, identityTokens);
      return new Promise((resolve) => exchange(req, res, undefined, resolve));
    },
    async stop() {
      if (state === 'stopped') return;
      state = 'stopped';
      for (const abort of inFlight) abort();
      target.agent.destroy();
    },
    status() {
      return {
        name: spec.name,
        kind: 'remote',
        state,
        pids: [],
        sessions: sessions.count(),
        restarts: 0,
        lastError,
        stderr: [],
      };
    },
  };
}
