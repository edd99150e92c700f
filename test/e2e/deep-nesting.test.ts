import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fixtureCommand, postInitialize, postToSession, startProxy } from '../support/proxy.js';

// A message nested deeper than JSON.stringify's recursion goes (10,000 levels in 60 KB, under the size from
// which a message's own bytes are passed on instead) parses, but cannot be written to a child's stdin. It
// used to throw out of the request's handling: a 500 and an error-level log line, from any client.

const echo = fixtureCommand('echo');
const manifest = `
servers:
  echo:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
`;

const test = suite('deep nesting');

const DEPTH = 10_000;
const deeplyNested = (id: number) =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}}}`;

test('a request nested too deeply to pass on is answered -32600 for its id; the session goes on', async () => {
  const proxy = await startProxy(manifest);
  try {
    const endpoint = `${proxy.url}/servers/echo/mcp`;
    const opened = await postInitialize(endpoint);
    await opened.text();
    const target = { endpoint, session: opened.headers.get('mcp-session-id')! };

    const refused = await postToSession(target, deeplyNested(5));
    assert.is(refused.status, 200);
    assert.match(
      await refused.text(),
      '{"jsonrpc":"2.0","id":5,"error":{"code":-32600,"message":"Invalid Request: nested too deeply to pass on"}}',
    );
    assert.not.match(proxy.stderr(), '"http-error"');

    const ping = await postToSession(target, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'ping' }));
    assert.is(ping.status, 200);
    assert.match(await ping.text(), '"id":6,"result":{}');
  } finally {
    await proxy.stop();
  }
});

test.run();
