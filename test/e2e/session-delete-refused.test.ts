import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as assert from 'uvu/assert';
import { OPS_KEY } from '../support/held-keys.js';
import { postInitialize, startProxy } from '../support/proxy.js';
import { test } from '../support/uvu.js';

// Under access control, a session stays its owner's until it is gone: a DELETE the server refuses leaves
// it open (a remote server may not let clients end sessions: the transport allows a 405).

test('a DELETE the remote server refuses leaves the session usable by its owner', async () => {
  const upstream = createServer((req, res) => {
    if (req.method === 'DELETE') return res.writeHead(405, { allow: 'GET, POST' }).end();
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const { id } = JSON.parse(body) as { id: number };
      res
        .writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'held-1' })
        .end(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  const proxy = await startProxy(
    `auth:\n  apiKeys: [{ name: ops, key: "\${OPS_KEY}", servers: ["*"] }]\nservers:\n  remote: { url: "${url}" }\n`,
    { env: { OPS_KEY } },
  );
  const endpoint = `${proxy.url}/servers/remote/mcp`;
  const headers = {
    'x-api-key': OPS_KEY,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  try {
    const opened = await postInitialize(endpoint, { 'x-api-key': OPS_KEY });
    assert.is(opened.status, 200);
    assert.is(opened.headers.get('mcp-session-id'), 'held-1');
    await opened.body?.cancel();

    const session = { ...headers, 'mcp-session-id': 'held-1' };
    const deleted = await fetch(endpoint, {
      method: 'DELETE',
      headers: session,
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(deleted.status, 405);
    await deleted.body?.cancel();

    const ping = await fetch(endpoint, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(ping.status, 200, "the session is still its owner's");
    await ping.body?.cancel();
  } finally {
    await proxy.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  }
});

test.run();
