/**
 * How requests to one remote server leave the proxy: directly, or through an egress proxy
 * (docs/decisions/0022-egress-proxy.md). An `https://` server is reached through a CONNECT tunnel, with TLS
 * to the server inside it; an `http://` server by sending the proxy absolute-form requests
 * (`GET http://host/path`), as curl and Go do: proxies commonly refuse CONNECT to ports other than 443
 * (Squid's default configuration does). Either way the agent keeps connections alive and reuses them.
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
import { connect, isIPv6, type Socket, type TcpNetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { once } from 'node:events';
import { urlToHttpOptions } from 'node:url';
import type { EgressProxy } from './egress-proxy.js';

/**
 * How long connecting to the proxy and, for a tunnel, its answer to CONNECT may take. The request that
 * waits for the connection is not told when its own timeout passes (Node gives a request its socket only
 * once the tunnel is open), so this also bounds how late that request's 504 can come.
 */
const PROXY_SETUP_TIMEOUT_MS = 30_000;

export interface EgressConnection {
  /** What every request to the server starts from: where it goes, and the agent that connects it. */
  target: RequestOptions & { agent: HttpAgent };
  /** Headers every request carries for the proxy: Proxy-Authorization of an absolute-form request. */
  headers: OutgoingHttpHeaders;
  /**
   * For requests sent to the proxy in absolute form: the error that an answer of the proxy's own stands
   * for. Only a 407 is surely the proxy's; anything else may be the server's, and is relayed as such.
   */
  proxyRefusal?: (response: IncomingMessage) => Error | undefined;
}

export function egressConnection(url: URL, proxy: EgressProxy | undefined): EgressConnection {
  const secure = url.protocol === 'https:';
  const options = urlToHttpOptions(url);
  if (proxy === undefined) {
    // Node's defaults otherwise: sockets unlimited, up to 256 kept idle, the most recently used taken first
    // (scheduling 'lifo'), so sequential exchanges keep reusing one warm connection.
    const agent = secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    return { target: { ...options, agent }, headers: {} };
  }
  if (secure)
    return { target: { ...options, agent: new TunnelAgent(new ProxyConnector(proxy)) }, headers: {} };
  return {
    target: {
      ...options,
      path: `${url.protocol}//${url.host}${url.pathname}${url.search}`,
      agent: new ForwardAgent(new ProxyConnector(proxy)),
    },
    headers: proxy.authorization === undefined ? {} : { 'proxy-authorization': proxy.authorization },
    proxyRefusal: (response) =>
      response.statusCode === 407 ? refused(proxy, 'the request', response) : undefined,
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
  if (status < 200 || status > 299) throw refused(proxy, `a tunnel to ${authority}`, response);
}

/** The error for an answer of the proxy's that refuses `what`. */
function refused(proxy: EgressProxy, what: string, answer: IncomingMessage): Error {
  return new Error(
    `proxy ${proxy.name} refused ${what}: ${answer.statusCode} ${answer.statusMessage}`.trimEnd(),
  );
}
