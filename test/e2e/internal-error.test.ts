import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fixtureCommand, postInitialize, postToSession, startProxy } from '../support/proxy.js';

// The MCP endpoint's last resort (mcp-endpoint.ts): an error that escapes a request's handling is answered
// 500 with a JSON-RPC internal error, logged as http-error with the request id, and the proxy and the
// session go on. Reached for real, not mocked: a request whose params nest deeper than JSON.stringify's
// recursion goes (10,000 levels in 60 KB, under the size from which a message's own bytes are passed on
// instead) throws RangeError while the proxy writes it to a shared child's stdin.

const echo = fixtureCommand('echo');
const manifest = `
servers:
  echo:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
`;

const test = suite('internal error');

const DEPTH = 10_000;
const deeplyNested = (id: number) =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}}}`;

test('an error escaping a request is answered 500 with a JSON-RPC internal error and logged; the session goes on', async () => {
  const proxy = await startProxy(manifest);
  try {
    const endpoint = `${proxy.url}/servers/echo/mcp`;
    const opened = await postInitialize(endpoint);
    await opened.text();
    const target = { endpoint, session: opened.headers.get('mcp-session-id')! };

    const failed = await postToSession(target, deeplyNested(5));
    assert.is(failed.status, 500);
    const requestId = failed.headers.get('x-request-id')!;
    assert.equal(await failed.json(), {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32603, message: 'Internal Server Error' },
    });
    assert.match(
      proxy.stderr(),
      `"event":"http-error","error":"Maximum call stack size exceeded","requestId":"${requestId}"`,
    );

    const ping = await postToSession(target, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'ping' }));
    assert.is(ping.status, 200);
    assert.match(await ping.text(), '"id":6,"result":{}');
  } finally {
    await proxy.stop();
  }
});

test.run();
