import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface EgressProxy {
  /** http://127.0.0.1:PORT, without credentials. */
  url: string;
  /** `127.0.0.1:PORT`: how the proxy under test should name it. */
  name: string;
  /** `host:port` of every tunnel it opened, in order. */
  tunnels: string[];
  /** Every absolute-form request it passed on, as its URL. */
  forwarded: string[];
  /** The Proxy-Authorization header of every CONNECT and request it was sent (undefined: none). */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

const REFUSED_AUTHENTICATION =
  'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\n' +
  'Content-Length: 0\r\nConnection: close\r\n\r\n';
const FORBIDDEN = 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

/**
 * A forward proxy on 127.0.0.1, as an egress proxy in a cluster: CONNECT tunnels, and absolute-form requests
 * passed on. It requires `Proxy-Authorization: Basic` with `user:password` (answering 407 otherwise), and
 * reaches only names under `.test`, which it resolves to 127.0.0.1 (403 for anything else: an address
 * that should never have been sent to it, such as loopback).
 */
export async function startEgressProxy(user: string, password: string): Promise<EgressProxy> {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const admitted = (req: IncomingMessage) => {
    authorizations.push(req.headers['proxy-authorization']);
    return req.headers['proxy-authorization'] === expected;
  };

  const server: Server = createServer((req, res) => {
    if (!admitted(req)) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="egress"' }).end();
      return;
    }
    const target = URL.canParse(req.url ?? '') ? new URL(req.url!) : undefined;
    if (!target?.hostname.endsWith('.test')) {
      res.writeHead(target ? 403 : 400).end();
      return;
    }
    forwarded.push(target.href);
    const { 'proxy-authorization': _, 'proxy-connection': __, ...headers } = req.headers;
    const upstream = request(
      {
        host: '127.0.0.1',
        port: target.port,
        method: req.method,
        path: target.pathname + target.search,
        headers,
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', track);
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    client.on('error', () => client.destroy());
    if (!admitted(req)) return void client.end(REFUSED_AUTHENTICATION);
    const match = /^([^:]+):(\d+)$/.exec(req.url ?? '');
    if (!match?.[1]!.endsWith('.test')) return void client.end(FORBIDDEN);
    const upstream = connect(Number(match[2]), '127.0.0.1', () => {
      tunnels.push(req.url!);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const name = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${name}`,
    name,
    tunnels,
    forwarded,
    authorizations,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
