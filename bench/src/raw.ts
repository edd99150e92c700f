/**
 * A bare Streamable HTTP client (node:http, keep-alive) for the memory and reload figures: 10,000 sessions
 * opened and abandoned cost the bench little, and a poll every few milliseconds stays cheap.
 */
import { Agent, request } from 'node:http';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

export const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface RawAnswer {
  status: number;
  sessionId?: string;
  /** JSON-RPC messages in the body, JSON or SSE. */
  messages: unknown[];
}

export function post(url: string, body: unknown, sessionId?: string, timeoutMs = 10_000): Promise<RawAnswer> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        timeout: timeoutMs,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': data.length,
          ...(sessionId !== undefined && {
            'mcp-session-id': sessionId,
            'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
          }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const header = res.headers['mcp-session-id'];
          resolve({
            status: res.statusCode ?? 0,
            ...(typeof header === 'string' && { sessionId: header }),
            messages: parseBody(text, String(res.headers['content-type'] ?? '')),
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

function parseBody(text: string, type: string): unknown[] {
  if (text === '') return [];
  if (type.includes('text/event-stream')) {
    // One message per event; events without data (a resumability priming event) carry none.
    const out: unknown[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '') continue;
      try {
        out.push(JSON.parse(data) as unknown);
      } catch {
        // not JSON: not a message
      }
    }
    return out;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

export function get(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: 'mcp-proxy-bench-raw', version: '1.0.0' },
  },
};

/** initialize + initialized; the session id, or an Error saying why not (status, body). */
export async function openSession(url: string): Promise<string> {
  const answer = await post(url, initialize);
  if (answer.status !== 200 || answer.sessionId === undefined) {
    throw new Error(`initialize answered ${answer.status}`);
  }
  const notified = await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, answer.sessionId);
  if (notified.status !== 202) throw new Error(`initialized answered ${notified.status}`);
  return answer.sessionId;
}

/** One echo call on an open session; throws unless it came back. */
export async function echoOn(url: string, sessionId: string, text: string, id = 2): Promise<void> {
  const answer = await post(
    url,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text } } },
    sessionId,
  );
  const result = answer.messages.find((m) => (m as { id?: unknown }).id === id) as
    { result?: { content?: { text?: string }[] } } | undefined;
  if (answer.status !== 200 || result?.result?.content?.[0]?.text !== text) {
    throw new Error(`echo answered ${answer.status}`);
  }
}

/** DELETE: ends a session politely. */
export function del(url: string, sessionId: string, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'DELETE',
        agent,
        timeout: timeoutMs,
        headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': LATEST_PROTOCOL_VERSION },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
