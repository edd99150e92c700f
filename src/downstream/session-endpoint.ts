import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../log.js';
import { UnavailableError, type ChannelSource, type SessionChannel } from '../upstream/channel.js';
import { ErrorCode, errorBody } from '../upstream/jsonrpc.js';
import { DEFAULT_MAX_BODY_BYTES, readBody } from './body.js';

export interface EndpointOptions {
  /** The server's name, for messages and logs. */
  name: string;
  maxSessions?: number;
  idleTimeoutMs: number;
  /** Read per request: a reload may change it. */
  maxBodyBytes?: () => number;
  log: Logger;
}

interface Session {
  id: string;
  transport: StreamableHTTPServerTransport;
  channel: SessionChannel;
  lastActivity: number;
  /** Requests being served now, GET streams included: a session with one open is not idle. */
  active: number;
}

/**
 * The client side of a message-level upstream: the MCP Streamable HTTP transport (the SDK's, one per
 * client session) in front of a channel per session. Owns the session table, the session cap and idle
 * reaping. Everything about the transport's own rules (Accept, content type, protocol version header,
 * SSE streams, DELETE) is left to the SDK transport, so clients see exactly what the spec says.
 */
export class SessionEndpoint {
  private readonly sessions = new Map<string, Session>();
  /** Sessions being opened: counted against maxSessions before their id exists. */
  private opening = 0;
  private reaper: NodeJS.Timeout | undefined;
  private closed = false;

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
    if (this.closed)
      return answer(res, 503, ErrorCode.UpstreamUnavailable, `server ${this.options.name} is stopping`);
    const sessionId = req.headers['mcp-session-id'];
    if (Array.isArray(sessionId))
      return answer(res, 400, ErrorCode.InvalidRequest, 'Bad Request: one Mcp-Session-Id only');

    if (req.method === 'POST') {
      const body = await readBody(req, this.options.maxBodyBytes?.() ?? DEFAULT_MAX_BODY_BYTES);
      if (!body.ok) return answer(res, body.status, ErrorCode.InvalidRequest, body.message);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.text);
      } catch {
        return answer(res, 400, ErrorCode.ParseError, 'Parse error: Invalid JSON');
      }
      // JSON-RPC 2.0: an empty batch is an invalid request, not an empty success.
      if (Array.isArray(parsed) && parsed.length === 0) {
        return answer(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: empty batch');
      }
      if (sessionId === undefined) return this.initialize(req, res, parsed);
      return this.serve(sessionId, req, res, parsed);
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      if (sessionId === undefined) {
        return answer(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
      }
      return this.serve(sessionId, req, res, undefined);
    }
    res.setHeader('Allow', 'GET, POST, DELETE');
    return answer(res, 405, ErrorCode.InvalidRequest, 'Method Not Allowed');
  }

  /** Closes every session (shutdown, or the server was removed). */
  async closeAll(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    await Promise.all([...this.sessions.keys()].map((id) => this.closeSession(id)));
  }

  private async initialize(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    if (!isInitializeRequest(body)) {
      return answer(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
    }
    const { maxSessions, name } = this.options;
    if (maxSessions !== undefined && this.sessions.size + this.opening >= maxSessions) {
      res.setHeader('Retry-After', '5');
      return answer(
        res,
        503,
        ErrorCode.UpstreamUnavailable,
        `server ${name} has reached its limit of ${maxSessions} sessions; retry later`,
      );
    }
    this.opening++;
    let channel: SessionChannel;
    try {
      channel = await this.source.open();
    } catch (error) {
      const retry = error instanceof UnavailableError ? error.retryAfterSeconds : undefined;
      if (retry !== undefined) res.setHeader('Retry-After', String(retry));
      return answer(res, 503, ErrorCode.UpstreamUnavailable, (error as Error).message);
    } finally {
      this.opening--;
    }

    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => {
        this.sessions.set(id, { id, transport, channel, lastActivity: Date.now(), active: 0 });
      },
      onsessionclosed: (id) => void this.closeSession(id),
    });
    transport.onmessage = (message: JSONRPCMessage) => channel.send(message);
    transport.onerror = (error) =>
      this.options.log.debug('transport-error', { server: name, error: error.message });
    channel.onmessage = (message, relatedRequestId) => {
      transport.send(message, { relatedRequestId }).catch((error: Error) => {
        // The client's stream is gone (it disconnected): nothing left to deliver to.
        this.options.log.debug('deliver-failed', { server: name, error: error.message });
      });
    };
    channel.onclose = () => {
      if (transport.sessionId) void this.closeSession(transport.sessionId);
    };
    await this.run(undefined, transport, req, res, body);
    // Initialization failed at the transport (a bad Accept header, say): no session, free the channel.
    if (!transport.sessionId || !this.sessions.has(transport.sessionId)) channel.close();
  }

  private async serve(id: string, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return answer(res, 404, ErrorCode.SessionNotFound, 'Session not found');
    await this.run(session, session.transport, req, res, body);
  }

  private async run(
    session: Session | undefined,
    transport: StreamableHTTPServerTransport,
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
  ): Promise<void> {
    if (session) {
      session.active++;
      session.lastActivity = Date.now();
      res.once('close', () => {
        session.active--;
        session.lastActivity = Date.now();
      });
    }
    try {
      await transport.handleRequest(req, res, body);
    } catch (error) {
      this.options.log.warn('request-failed', { server: this.options.name, error: (error as Error).message });
      if (!res.headersSent) answer(res, 500, ErrorCode.InternalError, 'Internal error');
    }
  }

  private async closeSession(id: string): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    session.channel.close();
    await session.transport.close().catch(() => {});
  }

  private reapIdle(): void {
    const cutoff = Date.now() - this.options.idleTimeoutMs;
    for (const session of this.sessions.values()) {
      if (session.active === 0 && session.lastActivity < cutoff) {
        this.options.log.info('session-idle-closed', { server: this.options.name, session: session.id });
        void this.closeSession(session.id);
      }
    }
  }
}

function isInitializeRequest(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    (body as { method?: unknown }).method === 'initialize'
  );
}

/** An HTTP error answered by the proxy itself, with a JSON-RPC error body as the transport's own errors have. */
export function answer(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(errorBody(code, message));
}
