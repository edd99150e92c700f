import { request, type IncomingHttpHeaders } from 'node:http';
import type { RemoteServerSpec } from '../../src/manifest/types.js';

/** A remote server's spec with the defaults a manifest would give it; `extra` overrides them. */
export function remoteSpec(
  name: string,
  url: string,
  extra: Partial<RemoteServerSpec> = {},
): RemoteServerSpec {
  return {
    kind: 'remote',
    name,
    url,
    headers: {},
    origin: 'servers',
    useWorkloadIdentity: false,
    idleTimeoutMs: 60_000,
    timeoutMs: 5_000,
    drainTimeoutMs: 1_000,
    disabled: false,
    ...extra,
  };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  /** False when the response was cut before its end. */
  complete: boolean;
}

/**
 * Sends one request to 127.0.0.1:port on a connection of its own and collects the whole reply, cut or not;
 * rejects if the connection fails before a response, or after `boundMs`. `headers`: as node:http sends
 * them (a list repeats the field), which fetch would refuse for some (Connection) or methods (TRACE).
 */
export function callOnce(
  port: number,
  {
    body = '{"jsonrpc":"2.0","id":7,"method":"ping"}',
    method = 'POST',
    path = '/',
    headers = {},
    boundMs = 10_000,
  }: {
    body?: string;
    method?: string;
    path?: string;
    headers?: Record<string, string | string[]>;
    boundMs?: number;
  } = {},
): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no reply within ${boundMs} ms`));
      req.destroy(); // a connection left open would outlive the test, and hold its server's close()
    }, boundMs);
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', () => {});
      res.on('close', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: text,
          complete: res.complete,
        });
      });
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(body);
  });
}
