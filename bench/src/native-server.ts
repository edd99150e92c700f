/**
 * The native baseline: the fixture's tools served directly by the SDK's Streamable HTTP server transport,
 * one transport and one McpServer per session, no proxy. The floor for any HTTP-exposed MCP server.
 * Prints `native listening <port>`; listens on 127.0.0.1 only.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const transports = new Map<string, StreamableHTTPServerTransport>();

/** The same tools, with the same schemas and answers, as test/fixtures/servers/echo.ts. */
function newServer(): McpServer {
  const server = new McpServer({ name: 'echo-native', version: '1.0.0' });
  server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.registerTool(
    'sleep',
    { inputSchema: { ms: z.number().int().min(0).max(60_000) } },
    async ({ ms }) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { content: [{ type: 'text', text: `slept ${ms}` }] };
    },
  );
  return server;
}

function fail(res: import('node:http').ServerResponse, status: number, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

const http = createServer((req, res) => {
  void (async () => {
    if (!req.url?.startsWith('/mcp')) return fail(res, 404, 'not found');
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const transport = transports.get(sessionId);
      if (!transport) return fail(res, 404, 'Session not found');
      return transport.handleRequest(req, res);
    }
    if (req.method !== 'POST') return fail(res, 400, 'Mcp-Session-Id header is required');
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => void transports.set(id, transport),
      onsessionclosed: (id) => void transports.delete(id),
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await newServer().connect(transport);
    await transport.handleRequest(req, res);
  })().catch((error: Error) => {
    if (!res.headersSent) fail(res, 500, error.message);
  });
});

http.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) }, () => {
  const address = http.address();
  process.stdout.write(`native listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});

const stop = () => {
  for (const transport of transports.values()) void transport.close();
  http.close();
  http.closeAllConnections();
  setTimeout(() => process.exit(0), 100).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
