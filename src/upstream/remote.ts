import {
  validateHeaderName,
  validateHeaderValue,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import {
  opensSession,
  SESSION_LIMIT_RETRY_AFTER_S,
  sessionIdOf,
  sessionLimitReached,
} from '../downstream/wire.js';
import { silentLogger, type Logger } from '../log.js';
import type { Environment } from '../manifest/interpolate.js';
import type { RemoteServerSpec } from '../manifest/types.js';
import { egressConnection } from './egress-connection.js';
import { egressRoute } from './egress-proxy.js';
import { ConnectionPool } from './http1/connection-pool.js';
import { answerError, Exchange, HOP_BY_HOP, type ExchangeContext } from './http1/exchange.js';
import { ErrorCode } from './jsonrpc.js';
import { RepeatFilter } from './repeat-filter.js';
import { RequestIdPeek } from './request-id-peek.js';
import type { Upstream, UpstreamState } from './types.js';
import { urlCredentials } from '../url-credentials.js';
import { deadline } from '../deadline.js';

const UPSTREAM_ERROR = ErrorCode.UpstreamUnavailable;

/**
 * How long one failure is logged once: an upstream that fails every request (down, or answering 503) would
 * otherwise write a line per request. `/servers` shows the latest at any time.
 */
const FAILURE_LOG_WINDOW_MS = 30_000;

/**
 * Client headers that stop here. Host names the proxy, not the upstream: the upstream's own is sent,
 * unless a configured Host says otherwise. The client's Authorization and X-API-Key are credentials for
 * the proxy (a key may open every server), and MCP's security guidance forbids passing tokens through; a
 * server that needs one gets it from the manifest's `headers`. Cookies are the proxy's origin's, shared by
 * every server on it, not this server's. Expect was already answered by the proxy's own HTTP server, which
 * sent the 100 Continue. Content-Length: the exchange frames the body it sends.
 */
const CLIENT_ONLY: ReadonlySet<string> = new Set([
  'host',
  'authorization',
  'x-api-key',
  'cookie',
  'expect',
  'content-length',
]);

/**
 * Client headers that claim who the client is, or where it came from, in the words of the front ends
 * (reverse proxies, auth proxies) that servers trust them from (decision 0042): a server behind Easy Auth,
 * oauth2-proxy, IAP or a Kubernetes auth proxy takes them as verified, and the proxy verified none of
 * them. Exact names here, families in CLAIMED_IDENTITY_FAMILY. A server that needs one gets it from the
 * manifest's `headers`.
 */
const CLAIMED_IDENTITY: ReadonlySet<string> = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-original-url',
  'x-original-uri',
  'x-rewrite-url',
  'x-goog-iap-jwt-assertion',
]);

/**
 * Families of CLAIMED_IDENTITY: X-Forwarded-For/-Host/-Proto/-User/-Email (nginx, oauth2-proxy); Easy
 * Auth's X-MS-CLIENT-PRINCIPAL(-ID, -NAME, -IDP) and X-MS-TOKEN-*; oauth2-proxy's X-Auth-Request-*; the
 * Kubernetes front proxy's X-Remote-User/-Group/-Extra-*; Google IAP's X-Goog-Authenticated-User-*; AWS
 * ALB's X-Amzn-Oidc-*; Cloudflare Access's Cf-Access-*.
 */
const CLAIMED_IDENTITY_FAMILY =
  /^(?:x-forwarded-|x-ms-client-principal|x-ms-token-|x-auth-request-|x-remote-|x-goog-authenticated-user-|x-amzn-oidc-|cf-access-)/;

/**
 * Configured headers that are not sent: how a message is framed and how its connection is handled are the
 * proxy's to decide, and a second framing beside its own would let a body be read as two requests.
 */
const NOT_CONFIGURABLE: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'content-length', 'expect']);

/**
 * Fields a client's Connection header cannot make hop-by-hop: the proxy counts sessions by them (its caps,
 * the session ledger), so the upstream must see what the proxy saw, or a request the proxy counted as one
 * of a session would open another upstream.
 */
const END_TO_END: ReadonlySet<string> = new Set(['mcp-session-id', 'mcp-protocol-version']);

/**
 * The client's end-to-end headers: not the hop-by-hop ones, those its Connection header names, CLIENT_ONLY,
 * and none that claims an identity.
 */
function clientRequestFields(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  // The Connection header (most often just `keep-alive`) is split only if present.
  const named = headers.connection?.split(',').map((token) => token.trim().toLowerCase());
  const kept: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (
      value === undefined ||
      HOP_BY_HOP.has(name) ||
      CLIENT_ONLY.has(name) ||
      CLAIMED_IDENTITY.has(name) ||
      CLAIMED_IDENTITY_FAMILY.test(name) ||
      (named?.includes(name) && !END_TO_END.has(name))
    ) {
      continue;
    }
    kept[name] = value;
  }
  return kept;
}

/** The value of the header `name` names, in any letter case. */
function headerNamed(headers: Record<string, string>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** What is wrong with the first header Node would refuse to send, if one is. */
function invalidHeader(headers: OutgoingHttpHeaders): string | undefined {
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value as string);
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
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

  observe(req: IncomingMessage, status: number, received: unknown): void {
    const now = Date.now();
    const sent = sessionIdOf(req.headers);
    if (opensSession(req)) {
      if (status >= 200 && status < 300 && typeof received === 'string') {
        this.prune(now);
        this.lastUsed.set(received, now);
      }
    } else if (sent !== undefined && this.lastUsed.has(sent)) {
      if (status === 404 || (req.method === 'DELETE' && status >= 200 && status < 300))
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
  // Decided once: url and headers never change for the life of this upstream (a change restarts it), nor
  // does the proxy's environment.
  const route = egressRoute(url, env);
  /** What every request gets on top of the client's: the upstream's Host, configured headers, the proxy's. */
  const addedHeaders: OutgoingHttpHeaders = { host: url.host };
  // Credentials in the URL are sent as Basic authorization, unless a configured Authorization says otherwise.
  const credentials = urlCredentials(url);
  if (credentials !== undefined) {
    addedHeaders.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  const ignoredHeaders: string[] = [];
  for (const [name, value] of Object.entries(spec.headers)) {
    if (NOT_CONFIGURABLE.has(name.toLowerCase())) ignoredHeaders.push(name);
    else addedHeaders[name.toLowerCase()] = value;
  }
  const connection = egressConnection(
    url,
    route.kind === 'proxy' ? route.proxy : undefined,
    headerNamed(spec.headers, 'host'),
  );
  Object.assign(addedHeaders, connection.headers);
  /** Why every request is refused, when a configured header cannot be sent: checked once, here. */
  const headersProblem = invalidHeader(addedHeaders);
  const pool = new ConnectionPool(connection.connect);
  const context: ExchangeContext = {
    name: spec.name,
    pool,
    path: connection.path,
    proxyRefusal: connection.proxyRefusal,
    get timeoutMs() {
      return spec.timeoutMs;
    },
    get maxBodyBytes() {
      return maxBodyBytes?.();
    },
    failed,
  };
  const sessions = new SessionLedger(() => spec.idleTimeoutMs);
  /** Requests that may open a session, passed on and not yet over: counted against `maxSessions`. */
  let opening = 0;
  /** Every exchange still running, for stop() to end. */
  const inFlight = new Set<Exchange>();
  let state: UpstreamState = 'starting';
  let lastError: string | undefined;
  const failureLog = new RepeatFilter(FAILURE_LOG_WINDOW_MS);

  const stoppedMessage = `upstream ${spec.name} is stopped`;

  /**
   * Records an upstream failure (unreachable, timed out, cut mid-response, a 5xx) and gives its message
   * back. Logged once per FAILURE_LOG_WINDOW_MS for the same message, with how many went unlogged.
   */
  function failed(message: string): string {
    lastError = message;
    const unlogged = failureLog.pass(message);
    if (unlogged !== undefined) {
      log.warn('upstream-failed', { server: spec.name, reason: message, ...(unlogged > 0 && { unlogged }) });
    }
    return message;
  }

  /** `token`: the workload-identity token to send as `Authorization: Bearer`, for a server that has one. */
  function exchange(
    req: IncomingMessage,
    res: ServerResponse,
    token: string | undefined,
    done: () => void,
  ): void {
    // The client may have left while the gateway checked its access: nothing would notice it any more.
    if (res.destroyed) return done();
    const fields = clientRequestFields(req.headers);
    Object.assign(fields, addedHeaders);
    if (token !== undefined) fields.authorization = `Bearer ${token}`;
    const problem =
      headersProblem ??
      (token === undefined ? undefined : invalidHeader({ authorization: fields.authorization }));
    if (problem !== undefined) {
      const message = `upstream ${spec.name} request refused: ${problem}`;
      answerError(res, 502, null, failed(message), UPSTREAM_ERROR);
      return done();
    }
    const running: Exchange = new Exchange(
      context,
      {
        answered(status, sessionId) {
          sessions.observe(req, status, sessionId);
          if (status === 401 && token !== undefined) identityTokens?.refused(token);
        },
        done() {
          inFlight.delete(running);
          done();
        },
      },
      req,
      res,
    );
    inFlight.add(running);
    running.start(fields);
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
      // The token counts against the server's `timeout` like the upstream's answer: callers share one fetch
      // per scope, which a slow or throttling token endpoint can hold for half a minute.
      const { timeoutMs } = spec;
      token = await (timeoutMs > 0
        ? deadline(tokens.next(), timeoutMs, `no workload identity token within ${timeoutMs} ms`)
        : tokens.next());
    } catch (error) {
      return notCalled(req, res, (error as Error).message);
    }
    // The token may have taken a while: the proxy may have stopped this server, or the client left.
    if (state === 'stopped') return answerError(res, 503, null, stoppedMessage, UPSTREAM_ERROR);
    if (res.destroyed) return;
    return new Promise((resolve) => exchange(req, res, token, resolve));
  }

  function pass(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (identityTokens) return exchangeWithIdentity(req, res, identityTokens);
    return new Promise((resolve) => exchange(req, res, undefined, resolve));
  }

  return {
    get spec() {
      return spec;
    },
    async start() {
      // Nothing to start: a remote server is not probed, its failures show per request.
      if (state !== 'starting') return { ok: true };
      state = 'ready';
      if (ignoredHeaders.length > 0) {
        log.warn('upstream-headers-ignored', {
          server: spec.name,
          headers: ignoredHeaders,
          reason: 'the proxy frames requests and handles connections itself',
        });
      }
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
      if (!opensSession(req)) return pass(req, res);
      const { maxSessions } = spec;
      if (maxSessions !== undefined && sessions.count() + opening >= maxSessions) {
        res.setHeader('Retry-After', String(SESSION_LIMIT_RETRY_AFTER_S));
        const { status, code, message } = sessionLimitReached(`server ${spec.name}`, maxSessions);
        answerError(res, status, null, message, code);
        return Promise.resolve();
      }
      opening++;
      return pass(req, res).finally(() => opening--);
    },
    async stop() {
      if (state === 'stopped') return;
      state = 'stopped';
      for (const running of inFlight) running.abort('stop');
      pool.destroy();
      connection.abandon();
    },
    sessionCount: () => sessions.count(),
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
