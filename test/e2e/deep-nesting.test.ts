import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { connect, fixtureCommand, postInitialize, postToSession, startProxy } from '../support/proxy.js';

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

test('with isolation: session, a request too deep to pass on leaves no timer behind for its id', async () => {
  const proxy = await startProxy(
    `servers:\n  echo:\n    command: ${JSON.stringify(echo.command)}\n    args: ${JSON.stringify(echo.args)}\n    isolation: session\n    timeout: 2s\n`,
  );
  try {
    const endpoint = `${proxy.url}/servers/echo/mcp`;
    const opened = await postInitialize(endpoint);
    await opened.text();
    const target = { endpoint, session: opened.headers.get('mcp-session-id')! };
    const refused = await postToSession(target, deeplyNested(7));
    assert.match(await refused.text(), '"code":-32600');
    // The same id again, a second later, for a call that ends after the refused one's 2 s would have: a
    // timer left behind would answer it with a timeout first.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'sleep', arguments: { ms: 1500 } },
    });
    const answered = await postToSession(target, call);
    assert.not.match(await answered.text(), 'did not answer within');
  } finally {
    await proxy.stop();
  }
});

test("a server's message nested too deeply to pass on: a log line is left out, an answer becomes an error; the proxy goes on", async () => {
  const chatty = fixtureCommand('chatty');
  const proxy = await startProxy(
    `servers:\n  chatty: { command: ${JSON.stringify(chatty.command)}, args: ${JSON.stringify(chatty.args)} }\n`,
  );
  const { client } = await connect(proxy.url, 'chatty');
  try {
    // The log line goes to the one session with a call in flight (0044): this one's, as it is written.
    const logged = await client.callTool({ name: 'deep-log', arguments: {} });
    assert.equal(logged.content, [{ type: 'text', text: 'logged' }]);
    const answered = await client.callTool({ name: 'deep-answer', arguments: {} }).then(
      () => 'a result',
      (error: Error) => error.message,
    );
    assert.match(answered, "the server's answer is nested too deeply to pass on");
    await client.ping();
    assert.is(proxy.process.exitCode, null, 'the proxy is still running');
  } finally {
    await client.close();
    await proxy.stop();
  }
});

test.run();
