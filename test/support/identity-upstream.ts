import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  path: string;
  headers: IncomingHttpHeaders;
}

export interface RecordingUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Every request received, in order. */
  seen: Recorded[];
  /** Requests received on one path (each manifest server gets its own). */
  on(path: string): Recorded[];
  /** From now on, answers 401 to requests with this Authorization header (a token it no longer accepts). */
  refuse(authorization: string): void;
  close(): Promise<void>;
}

/**
 * A plain-HTTP stand-in for a remote MCP server that records the headers of every request. It answers a
 * JSON-RPC request with an empty result (what `ping` expects), anything else with 202, as Streamable HTTP
 * answers notifications; a request whose Authorization it was told to refuse, with 401.
 */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const seen: Recorded[] = [];
  const refused = new Set<string>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ path: req.url ?? '/', headers: req.headers });
      if (refused.has(req.headers.authorization ?? '')) {
        res.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': 'Bearer error="invalid_token"',
        });
        res.end(JSON.stringify({ error: 'invalid_token' }));
        return;
      }
      let id: unknown;
      try {
        id = (JSON.parse(body) as { id?: unknown }).id;
      } catch {
        id = undefined;
      }
      if (id === undefined) {
        res.writeHead(202).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    on: (path) => seen.filter((r) => r.path === path),
    refuse: (authorization) => void refused.add(authorization),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
