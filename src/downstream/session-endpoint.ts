import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../log.js';
import { UnavailableError, type ChannelSource, type SessionChannel } from '../upstream/channel.js';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';
import { parsedFrom } from '../upstream/message-text.js';
import { DEFAULT_MAX_BODY_BYTES, readBody } from './body.js';
import { ClientSession, type SessionHost } from './client-session.js';
import {
  ALLOWED_METHODS,
  EMPTY_ANSWER_HEADERS,
  isInitializeRequest,
  readMessages,
  refusal,
  refuseGetHeaders,
  refuseMethod,
  refusePostHeaders,
  refuseProtocolVersion,
  SESSION_LIMIT_RETRY_AFTER_S,
  sessionIdOf,
  sessionLimitReached,
  type Refusal,
} from './wire.js';

export interface EndpointOptions {
  /** The server's name, for messages and logs. */
  name: string;
  maxSessions?: number;
  idleTimeoutMs: number;
  /** Read per request: a reload may change it. */
  maxBodyBytes?: () => number;
  log: Logger;
}

/**
 * The client side of a message-level upstream: the MCP Streamable HTTP transport, served by the proxy
 * itself (decision 0020), in front of a channel per session. Owns the session table, the session cap and
 * idle reaping; the wire rules are in `wire.ts`, the routing of answers to streams in `ClientSession`.
 */
export class SessionEndpoint {
  private readonly sessions = new Map<string, ClientSession>();
  /** Sessions being opened: counted against maxSessions before their id exists. */
  private opening = 0;
  private reaper: NodeJS.Timeout | undefined;
  private closed = false;
  /** What every session of this endpoint calls back: made once, so that a session holds no closures. */
  private readonly host: SessionHost = {
    ended: (session) => this.closeSession(session.id, `the upstream ${this.options.name} ended the session`),
    undeliverable: (session, message) =>
      // The client's stream is gone (it disconnected): nothing left to deliver to.
      this.options.log.debug('deliver-failed', {
        server: this.options.name,
        session: session.id,
        ...describe(message),
      }),
    notReading: (session, unread) =>
      this.options.log.warn('client-not-reading', {
        server: this.options.name,
        session: session.id,
        unread,
        note: 'a stream its client stopped reading was cut',
      }),
  };

  constructor(
    private readonly source: ChannelSource,
    private options: EndpointOptions,
  ) {
    this.reaper = this.startReaper();
  }

  get size(): number {
    return this.sessions.size;
  }

  has(sessionId: string): boolean {
    return this.sessions.has(sessionId);
  }

  /** New limits apply to new sessions and to the next reaping round. */
  update(limits: Pick<EndpointOptions, 'maxSessions' | 'idleTimeoutMs'>): void {
    this.options = { ...this.options, ...limits };
    clearInterval(this.reaper);
    if (!this.closed) this.reaper = this.startReaper();
  }

  private startReaper(): NodeJS.Timeout | undefined {
    // Many clients never send DELETE; without reaping their sessions would pile up for ever.
    // idleTimeout 0 turns reaping off.
    const { idleTimeoutMs } = this.options;
    if (idleTimeoutMs <= 0) return undefined;
    const every = Math.max(1000, Math.min(60_000, Math.floor(idleTimeoutMs / 4)));
    return setInterval(() => this.reapIdle(), every).unref();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.closed) return refuse(res, stopping(this.options.name));
    // A blank or repeated Mcp-Session-Id, and a method the transport does not have, were refused before
    // (the MCP endpoint, for every kind of server).
    const sessionId = sessionIdOf(req.headers);
    switch (req.method) {
      case 'POST':
        return this.post(req, res, sessionId);
      case 'GET':
      case 'DELETE': {
        if (sessionId === undefined) return refuse(res, SESSION_REQUIRED);
        const session = this.sessions.get(sessionId);
        if (!session) return refuse(res, SESSION_NOT_FOUND);
        const refused =
          (req.method === 'GET' && refuseGetHeaders(req.headers)) || refuseProtocolVersion(req.headers);
        if (refused) return refuse(res, refused);
        if (req.method === 'GET') return session.listen(res);
        this.closeSession(sessionId, 'the session was deleted');
        res.writeHead(200, EMPTY_ANSWER_HEADERS).end();
        return;
      }
      default:
        res.setHeader('Allow', ALLOWED_METHODS);
        return refuse(res, refuseMethod(req.method)!);
    }
  }

  /** Closes every session (shutdown, or the server was removed). */
  async closeAll(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    for (const id of [...this.sessions.keys()])
      this.closeSession(id, `server ${this.options.name} is stopping`);
  }

  private async post(
    req: IncomingMessage,
    res: ServerResponse,
    sessionId: string | undefined,
  ): Promise<void> {
    const refused = refusePostHeaders(req.headers);
    if (refused) return refuse(res, refused);
    // An unknown session is refused before its body is read.
    if (sessionId !== undefined && !this.sessions.has(sessionId)) return refuse(res, SESSION_NOT_FOUND);
    const body = await readBody(req, this.options.maxBodyBytes?.() ?? DEFAULT_MAX_BODY_BYTES);
    if (!body.ok) return refuse(res, refusal(body.status, ErrorCode.InvalidRequest, body.message));
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.text);
    } catch {
      return refuse(res, refusal(400, ErrorCode.ParseError, 'Parse error: Invalid JSON'));
    }
    const messages = readMessages(parsed);
    if (!Array.isArray(messages)) return refuse(res, messages);
    if (!Array.isArray(parsed)) parsedFrom(messages[0]!, body.text, body.bytes);
    if (sessionId === undefined) return this.initialize(res, messages);

    // Looked up again: the session may have ended while its body was read.
    const session = this.sessions.get(sessionId);
    if (!session) return refuse(res, SESSION_NOT_FOUND);
    if (messages.some(isInitializeRequest)) {
      return refuse(res, invalidRequest('Invalid Request: Server already initialized'));
    }
    const versionRefusal = refuseProtocolVersion(req.headers);
    if (versionRefusal) return refuse(res, versionRefusal);
    return refuse(res, session.post(res, messages));
  }

  private async initialize(res: ServerResponse, messages: JSONRPCMessage[]): Promise<void> {
    if (!messages.some(isInitializeRequest)) return refuse(res, SESSION_REQUIRED);
    if (messages.length > 1) {
      return refuse(res, invalidRequest('Invalid Request: Only one initialization request is allowed'));
    }
    const { maxSessions, name } = this.options;
    if (maxSessions !== undefined && this.sessions.size + this.opening >= maxSessions) {
      res.setHeader('Retry-After', String(SESSION_LIMIT_RETRY_AFTER_S));
      return refuse(res, sessionLimitReached(`server ${name}`, maxSessions));
    }
    this.opening++;
    let channel: SessionChannel;
    try {
      channel = await this.source.open();
    } catch (error) {
      const retry = error instanceof UnavailableError ? error.retryAfterSeconds : undefined;
      if (retry !== undefined) res.setHeader('Retry-After', String(retry));
      return refuse(res, unavailable((error as Error).message));
    } finally {
      this.opening--;
    }
    if (this.closed || res.destroyed) {
      // Stopping, or the client left while its session was being opened (a child starting, say): a
      // session no one knows the id of would only hold its place until reaped.
      channel.close();
      return refuse(res, stopping(name));
    }
    const session = new ClientSession(randomUUID(), channel, this.host);
    this.sessions.set(session.id, session);
    session.post(res, messages); // one initialize request: nothing for it to refuse
  }

  /** `why` answers the requests the session still has waiting. */
  private closeSession(id: string, why: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    session.close(why);
  }

  private reapIdle(): void {
    const cutoff = Date.now() - this.options.idleTimeoutMs;
    for (const session of this.sessions.values()) {
      if (session.idle && session.lastActivity < cutoff) {
        this.options.log.info('session-idle-closed', { server: this.options.name, session: session.id });
        this.closeSession(session.id, 'the session was idle'); // an idle session has nothing waiting
      }
    }
  }
}

/** What a log line may say about a message: its kind and method, never its content. */
function describe(message: JSONRPCMessage): Record<string, unknown> {
  return 'method' in message ? { method: message.method } : { response: true };
}

const badRequest = (message: string) => refusal(400, ErrorCode.UpstreamUnavailable, message);
const invalidRequest = (message: string) => refusal(400, ErrorCode.InvalidRequest, message);
const unavailable = (message: string) => refusal(503, ErrorCode.UpstreamUnavailable, message);
const stopping = (name: string) => unavailable(`server ${name} is stopping`);
const SESSION_REQUIRED = badRequest('Bad Request: Mcp-Session-Id header is required');
const SESSION_NOT_FOUND = refusal(404, ErrorCode.SessionNotFound, 'Session not found');

/**
 * Answers a refusal with its HTTP status and a JSON-RPC error body, as the transport's own errors have;
 * nothing when there is none.
 */
function refuse(res: ServerResponse, refusal: Refusal | undefined): void {
  if (!refusal) return;
  if (res.headersSent) res.end();
  else
    res
      .writeHead(refusal.status, { 'content-type': 'application/json' })
      .end(errorBody(refusal.code, refusal.message));
}
