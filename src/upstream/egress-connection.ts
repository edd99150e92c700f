/**
 * How requests to one remote server leave the proxy: directly, or through an egress proxy
 * (docs/decisions/0022-egress-proxy.md). An `https://` server is reached through a CONNECT tunnel, with TLS
 * to the server inside it; an `http://` server by sending the proxy absolute-form requests
 * (`GET http://host/path`), as curl and Go do: proxies commonly refuse CONNECT to ports other than 443
 * (Squid's default configuration does). Either way connections are kept and reused (`http1/connection-pool.ts`).
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequestArgs,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, type RequestOptions as TlsRequestOptions } from 'node:https';
import { connect, isIP, isIPv6, type Socket, type TcpNetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { once } from 'node:events';
import type { EgressProxy } from './egress-proxy.js';
import type { Connect } from './http1/connection-pool.js';

/**
 * How long connecting to the proxy and, for a tunnel, its answer to CONNECT may take. The request waiting
 * for the connection has its own timeout, and is answered when that passes; this bounds the setup itself,
 * which no request may be waiting for any more.
 */
const PROXY_SETUP_TIMEOUT_MS = 30_000;

/** TCP keep-alive on every connection, as Node's agent asks for with `keepAlive: true`. */
const TCP_KEEP_ALIVE = { keepAlive: true, keepAliveInitialDelay: 1000 };

export interface EgressConnection {
  /** The request target: the server's path and query, or its whole URL for a proxy that forwards requests. */
  path: string;
  /** Opens a connection that requests to the server are written to. */
  connect: Connect;
  /** Headers every request carries for the proxy: Proxy-Authorization of an absolute-form request. */
  headers: OutgoingHttpHeaders;
  /**
   * For requests sent to the proxy in absolute form: the error that an answer of the proxy's own stands
   * for. Only a 407 is surely the proxy's; anything else may be the server's, and is relayed as such.
   */
  proxyRefusal?: (status: number, reason: string) => Error | undefined;
  /** Closes the connections being set up (through a proxy), for stopping. */
  abandon(): void;
}

/** `hostHeader`: the Host a configured header names, which TLS then names too (SNI), as Node's agent does. */
export function egressConnection(
  url: URL,
  proxy: EgressProxy | undefined,
  hostHeader?: string,
): EgressConnection {
  const secure = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const options: TlsRequestOptions & TcpNetConnectOpts = {
    ...TCP_KEEP_ALIVE,
    host,
    port: Number(url.port) || (secure ? 443 : 80),
    ...(secure && { servername: serverName(hostHeader ?? url.host) }),
  };
  const path = `${url.pathname}${url.search}`;
  if (proxy === undefined) {
    if (!secure)
      return { path, connect: (callback) => callback(null, connect(options)), headers: {}, abandon() {} };
    // Through the agent's own connect for its TLS session cache: a new connection resumes a session.
    const agent = new HttpsAgent({ keepAlive: true });
    return { path, connect: agentConnect(agent, options), headers: {}, abandon: () => agent.destroy() };
  }
  if (secure) {
    const agent = new TunnelAgent(new ProxyConnector(proxy));
    return { path, connect: agentConnect(agent, options), headers: {}, abandon: () => agent.destroy() };
  }
  const agent = new ForwardAgent(new ProxyConnector(proxy));
  return {
    path: `${url.protocol}//${url.host}${path}`,
    connect: agentConnect(agent, options),
    headers: proxy.authorization === undefined ? {} : { 'proxy-authorization': proxy.authorization },
    proxyRefusal: (status, reason) =>
      status === 407 ? refused(proxy, 'the request', status, reason) : undefined,
    abandon: () => agent.destroy(),
  };
}

/** The name TLS sends (SNI) for a Host, `name[:port]` or `[IPv6][:port]`: none for an IP address. */
function serverName(host: string): string {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
  return isIP(name) ? '' : name;
}

/**
 * Opens connections with an agent's createConnection, which returns its socket (Node's own agents) or
 * hands it to the callback later (these below, once the proxy has answered), and, returning one, may
 * still call the callback once connected: the first answer counts.
 */
function agentConnect(agent: HttpsAgent | HttpAgent, options: TlsRequestOptions): Connect {
  const withSessionKey = { ...options, _agentKey: agent.getName(options) };
  return (callback) => {
    let answered = false;
    const answer = (error: Error | null, socket?: Duplex) => {
      if (answered) return;
      answered = true;
      callback(error, socket as Socket | undefined);
    };
    const socket = agent.createConnection(withSessionKey, answer);
    if (socket) answer(null, socket);
  };
}

/** An https.Agent whose connections are TLS to the server over a CONNECT tunnel through the proxy. */
class TunnelAgent extends HttpsAgent {
  constructor(private readonly proxy: ProxyConnector) {
    super({ keepAlive: true });
  }

  override createConnection(
    options: TlsRequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const tunnel = this.proxy.connect(options, authorityOf(options));
    // TLS over the tunnel, with the server's name for SNI and the certificate check, and the agent's
    // session cache, as for a direct connection.
    return deliver(
      tunnel.then((socket) => super.createConnection({ ...options, socket } as TlsRequestOptions)!),
      callback,
    );
  }

  override destroy(): void {
    this.proxy.abandon();
    super.destroy();
  }
}

/** An http.Agent whose connections go to the proxy, which is sent absolute-form requests. */
class ForwardAgent extends HttpAgent {
  constructor(private readonly proxy: ProxyConnector) {
    super({ keepAlive: true });
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return deliver(this.proxy.connect(options, undefined), callback);
  }

  override destroy(): void {
    this.proxy.abandon();
    super.destroy();
  }
}

/**
 * Hands a connection set up asynchronously to the agent's callback, which Node's agent always passes (the
 * type has it optional because a createConnection may return its socket instead); returns nothing, which
 * tells the agent to wait for the callback.
 */
function deliver(
  connection: Promise<Duplex>,
  callback: ((err: Error | null, stream: Duplex) => void) | undefined,
): undefined {
  connection.then(
    (socket) => callback!(null, socket),
    // On an error the agent reads no socket.
    (error: Error) => callback!(error, undefined as unknown as Duplex),
  );
  return undefined;
}

/** The server's `host:port` as CONNECT names it (an IPv6 address in brackets). */
function authorityOf(options: RequestOptions): string {
  const host = options.host ?? 'localhost';
  return `${isIPv6(host) ? `[${host}]` : host}:${options.port}`;
}

/** Opens an agent's connections to the proxy; keeps those being set up, so that stopping can abandon them. */
class ProxyConnector {
  private readonly settingUp = new Set<Socket>();

  constructor(private readonly proxy: EgressProxy) {}

  /**
   * A connection to the proxy, and through it a tunnel to `tunnelTo` when one is asked for. Rejects with a
   * message that names the proxy (host and port: never its credentials).
   */
  async connect(options: ClientRequestArgs, tunnelTo: string | undefined): Promise<Socket> {
    const { proxy } = this;
    // The agent asks for TCP keep-alive on its connections (keepAlive, keepAliveInitialDelay): these get it.
    const { keepAlive, keepAliveInitialDelay } = options as TcpNetConnectOpts;
    const socket = connect({ host: proxy.host, port: proxy.port, keepAlive, keepAliveInitialDelay });
    this.settingUp.add(socket);
    const timer = setTimeout(
      () => socket.destroy(new Error(`no answer within ${PROXY_SETUP_TIMEOUT_MS} ms`)),
      PROXY_SETUP_TIMEOUT_MS,
    );
    try {
      try {
        await once(socket, 'connect');
      } catch (error) {
        throw new Error(`proxy ${proxy.name} unreachable: ${(error as Error).message}`);
      }
      if (tunnelTo !== undefined) await openTunnel(socket, proxy, tunnelTo);
      return socket;
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
      this.settingUp.delete(socket);
    }
  }

  abandon(): void {
    for (const socket of this.settingUp) socket.destroy(new Error('abandoned: the server was stopped'));
    this.settingUp.clear();
  }
}

/** Sends CONNECT on `socket`, a connection to the proxy; resolves once the proxy has opened the tunnel. */
async function openTunnel(socket: Socket, proxy: EgressProxy, authority: string): Promise<void> {
  const headers: OutgoingHttpHeaders = { host: authority };
  if (proxy.authorization !== undefined) headers['proxy-authorization'] = proxy.authorization;
  const connectRequest = httpRequest({
    method: 'CONNECT',
    path: authority,
    headers,
    createConnection: () => socket,
  });
  connectRequest.end();
  let response: IncomingMessage;
  try {
    // Node reports every answer to CONNECT as 'connect', with the socket released from its HTTP parser.
    // Nothing of the server's can follow the answer yet (TLS has the client speak first), so the rest of
    // the event's arguments (the socket again, and what was read after the answer) are not needed.
    [response] = (await once(connectRequest, 'connect')) as [IncomingMessage];
  } catch (error) {
    throw new Error(`proxy ${proxy.name} opened no tunnel to ${authority}: ${(error as Error).message}`);
  }
  const status = response.statusCode ?? 0;
  if (status < 200 || status > 299) {
    throw refused(proxy, `a tunnel to ${authority}`, status, response.statusMessage ?? '');
  }
}

/** The error for an answer of the proxy's that refuses `what`. */
function refused(proxy: EgressProxy, what: string, status: number, reason: string): Error {
  return new Error(`proxy ${proxy.name} refused ${what}: ${status} ${reason}`.trimEnd());
}
