import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCertificates } from './identity-tls.js';

/** One client-credentials request, as MSAL sent it. */
export interface TokenRequest {
  tenant: string;
  grantType: string | null;
  clientId: string | null;
  scope: string | null;
  assertion: string | null;
  assertionType: string | null;
}

export interface TokenAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface TokenEndpoint {
  /** https://127.0.0.1:PORT: what AZURE_AUTHORITY_HOST is set to. */
  url: string;
  /** Token requests, in order. */
  requests: TokenRequest[];
  /** Anything else asked for, as `METHOD path`, apart from the OpenID metadata. */
  unexpected: string[];
  close(): Promise<void>;
}

const METADATA = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/;
const TOKEN = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;

/**
 * A stand-in for Microsoft Entra ID over HTTPS on 127.0.0.1, serving what MSAL asks of an authority that it
 * is told not to look up (disableInstanceDiscovery): the tenant's OpenID metadata, then the token endpoint.
 * `answer` decides each token response; `n` counts token requests from 1.
 */
export async function startTokenEndpoint(
  tls: TestCertificates,
  answer: (request: TokenRequest, n: number) => TokenAnswer,
): Promise<TokenEndpoint> {
  const requests: TokenRequest[] = [];
  const unexpected: string[] = [];
  let base = '';
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', base).pathname;
      const reply = (status: number, json: Record<string, unknown>) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      const metadata = req.method === 'GET' ? METADATA.exec(path) : null;
      if (metadata) {
        const tenant = `${base}/${metadata[1]}`;
        return reply(200, {
          issuer: `${tenant}/v2.0`,
          authorization_endpoint: `${tenant}/oauth2/v2.0/authorize`,
          token_endpoint: `${tenant}/oauth2/v2.0/token`,
          jwks_uri: `${tenant}/discovery/v2.0/keys`,
        });
      }
      const token = req.method === 'POST' ? TOKEN.exec(path) : null;
      if (token) {
        const form = new URLSearchParams(body);
        const request: TokenRequest = {
          tenant: token[1]!,
          grantType: form.get('grant_type'),
          clientId: form.get('client_id'),
          scope: form.get('scope'),
          assertion: form.get('client_assertion'),
          assertionType: form.get('client_assertion_type'),
        };
        requests.push(request);
        const { status, body: json } = answer(request, requests.length);
        return reply(status, json);
      }
      unexpected.push(`${req.method} ${req.url}`);
      reply(404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    unexpected,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
