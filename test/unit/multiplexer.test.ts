import type { InitializeResult, JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import type { SessionChannel } from '../../src/upstream/channel.js';
import { framed, parsedFrom } from '../../src/upstream/message-text.js';
import { Multiplexer } from '../../src/upstream/multiplexer.js';

// The multiplexer is pure routing between maps; these tests drive it with plain messages. The same
// behaviour is proven end to end, with real children and SDK clients, in test/e2e/serve-stdio.test.ts.

const INIT: InitializeResult = {
  protocolVersion: '2025-11-25',
  capabilities: { tools: {}, resources: { subscribe: true } },
  serverInfo: { name: 'fixture', version: '1.0.0' },
  instructions: 'be nice',
};

/** Messages as the tests read them: any field may be looked at. */
type Loose = Record<string, any>;

function setup(init: InitializeResult = INIT) {
  const upstream: Loose[] = [];
  const mux = new Multiplexer((m) => upstream.push(m), 'fixture');
  mux.upstreamReady(init);
  const open = () => {
    const channel: SessionChannel = mux.openSession();
    const received: { message: Loose; related?: RequestId }[] = [];
    channel.listener = {
      deliver: (message, related) => received.push({ message, ...(related !== undefined && { related }) }),
      upstreamClosed: () => {},
    };
    return { channel, received };
  };
  return { mux, upstream, open };
}

const req = (id: RequestId, method: string, params?: Record<string, unknown>): JSONRPCMessage => ({
  jsonrpc: '2.0',
  id,
  method,
  ...(params && { params }),
});

test('initialize and ping are answered locally, from the upstream initialize result', () => {
  const { upstream, open } = setup();
  const a = open();
  a.channel.send(
    req(0, 'initialize', {
      protocolVersion: '2025-03-26',
      capabilities: {},
      clientInfo: { name: 'c', version: '1' },
    }),
  );
  a.channel.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  a.channel.send(req(1, 'ping'));
  assert.equal(upstream, []);
  assert.equal(a.received[0]!.message, {
    jsonrpc: '2.0',
    id: 0,
    result: { ...INIT, protocolVersion: '2025-03-26' },
  });
  assert.equal(a.received[1]!.message, { jsonrpc: '2.0', id: 1, result: {} });
});

test('an unsupported client protocol version gets the upstream version', () => {
  const { open } = setup();
  const a = open();
  a.channel.send(req('x', 'initialize', { protocolVersion: '1999-01-01' }));
  assert.is((a.received[0]!.message as { result: InitializeResult }).result.protocolVersion, '2025-11-25');
});

test("a client asking for a newer version than the child agreed to is given the child's", () => {
  const { open } = setup({ ...INIT, protocolVersion: '2025-06-18' });
  const a = open();
  a.channel.send(req('x', 'initialize', { protocolVersion: '2025-11-25', capabilities: {} }));
  assert.is((a.received[0]!.message as { result: InitializeResult }).result.protocolVersion, '2025-06-18');
  const b = open();
  b.channel.send(req('x', 'initialize', { protocolVersion: '2025-03-26', capabilities: {} }));
  assert.is((b.received[0]!.message as { result: InitializeResult }).result.protocolVersion, '2025-03-26');
});

test('the same client id in two sessions never crosses: ids are remapped both ways', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  const b = open();
  a.channel.send(req(1, 'tools/call', { name: 'echo', arguments: { v: 'a' } }));
  b.channel.send(req(1, 'tools/call', { name: 'echo', arguments: { v: 'b' } }));
  const [ua, ub] = upstream as { id: number }[];
  assert.is.not(ua!.id, ub!.id);
  mux.fromUpstream({ jsonrpc: '2.0', id: ub!.id, result: { v: 'b' } });
  mux.fromUpstream({ jsonrpc: '2.0', id: ua!.id, result: { v: 'a' } });
  assert.equal(a.received, [{ message: { jsonrpc: '2.0', id: 1, result: { v: 'a' } } }]);
  assert.equal(b.received, [{ message: { jsonrpc: '2.0', id: 1, result: { v: 'b' } } }]);
});

test('progress travels to its own session and request, under the client token', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  const b = open();
  a.channel.send(req(7, 'tools/call', { name: 'slow', _meta: { progressToken: 'tok' } }));
  b.channel.send(req(7, 'tools/call', { name: 'slow', _meta: { progressToken: 'tok' } }));
  const [ua] = upstream as { id: number; params: { _meta: { progressToken: number } } }[];
  const token = ua!.params._meta.progressToken;
  mux.fromUpstream({
    jsonrpc: '2.0',
    method: 'notifications/progress',
    params: { progressToken: token, progress: 1 },
  });
  assert.equal(a.received, [
    {
      message: {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 'tok', progress: 1 },
      },
      related: 7,
    },
  ]);
  assert.equal(b.received, []);
});

test('a cancellation reaches the upstream under the upstream id, and the late answer is dropped', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  a.channel.send(req(3, 'tools/call', { name: 'slow' }));
  const upstreamId = (upstream[0] as { id: number }).id;
  a.channel.send({
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: 3, reason: 'user' },
  });
  assert.equal(upstream[1], {
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: upstreamId, reason: 'user' },
  });
  mux.fromUpstream({ jsonrpc: '2.0', id: upstreamId, result: {} });
  assert.equal(a.received, []);
});

test('a server request goes to the one session with work in flight, and its answer comes back', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  const b = open();
  b.channel.send(req(0, 'initialize', { protocolVersion: '2025-11-25', capabilities: { sampling: {} } }));
  b.channel.send(req(5, 'tools/call', { name: 'sample' }));
  mux.fromUpstream(req(99, 'sampling/createMessage', { messages: [] }));
  assert.equal(a.received, []);
  const delivered = b.received[1]!;
  assert.is(delivered.related, 5, 'it travels on the stream of the call that caused it');
  const downstreamId = (delivered.message as { id: number }).id;
  b.channel.send({ jsonrpc: '2.0', id: downstreamId, result: { content: 'hi' } });
  assert.equal(upstream.at(-1), { jsonrpc: '2.0', id: 99, result: { content: 'hi' } });
});

test('a server request with no way to tell its session is refused, not guessed', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  const b = open();
  a.channel.send(req(1, 'tools/call', { name: 'x' }));
  b.channel.send(req(1, 'tools/call', { name: 'y' }));
  mux.fromUpstream(req(42, 'elicitation/create', {}));
  const answer = upstream.at(-1) as { id: number; error: { message: string } };
  assert.is(answer.id, 42);
  assert.match(answer.error.message, 'cannot tell which client');
  assert.is(a.received.length + b.received.length, 0);
});

test('a server request while no session has a call in flight is refused, even with one session open', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  a.channel.send(req(0, 'initialize', { protocolVersion: '2025-11-25', capabilities: { sampling: {} } }));
  mux.fromUpstream(req(42, 'sampling/createMessage', { messages: [] }));
  const answer = upstream.at(-1) as { id: number; error: { message: string } };
  assert.is(answer.id, 42);
  assert.match(answer.error.message, 'no client session has a call in flight');
  assert.is(a.received.length, 1, 'only the initialize answer');
});

const log = (data: string): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/message',
  params: { level: 'info', data },
});
const methods = (received: { message: Loose }[]) => received.map((r) => r.message.method ?? 'response');

/** A multiplexer whose upstream cannot write what `unwritable` picks, as JSON.stringify a message too deep. */
function setupUnwritable(unwritable: (m: Loose) => boolean) {
  const upstream: Loose[] = [];
  const mux = new Multiplexer((m) => {
    if (unwritable(m)) throw new RangeError('Maximum call stack size exceeded');
    upstream.push(m);
  }, 'fixture');
  mux.upstreamReady(INIT);
  const open = (capabilities: Record<string, object> = {}) => {
    const channel = mux.openSession();
    const received: Loose[] = [];
    channel.listener = { deliver: (message) => received.push(message), upstreamClosed: () => {} };
    channel.send(
      req('init', 'initialize', {
        protocolVersion: '2025-11-25',
        capabilities,
        clientInfo: { name: 'c', version: '1' },
      }),
    );
    received.length = 0;
    return { channel, received };
  };
  return { mux, upstream, open };
}

test('a subscription that could not be written is not kept: no updates follow', () => {
  const { mux, open } = setupUnwritable((m) => m.params?.uri === 'deep://x');
  const a = open();
  assert.throws(() => a.channel.send(req(1, 'resources/subscribe', { uri: 'deep://x' })), RangeError);
  mux.fromUpstream({
    jsonrpc: '2.0',
    method: 'notifications/resources/updated',
    params: { uri: 'deep://x' },
  });
  assert.equal(a.received, []);
});

test("a client's answer to a server request that could not be written is an error to the child", () => {
  const { mux, upstream, open } = setupUnwritable((m) => m.result?.deep === true);
  const a = open({ sampling: {} });
  a.channel.send(req(1, 'tools/call', { name: 'x' }));
  mux.fromUpstream({ jsonrpc: '2.0', id: 'ask', method: 'sampling/createMessage', params: {} });
  const asked = a.received.find((m) => m.method === 'sampling/createMessage')!;
  a.channel.send({ jsonrpc: '2.0', id: asked.id, result: { deep: true } } as JSONRPCMessage);
  assert.equal(upstream.at(-1), {
    jsonrpc: '2.0',
    id: 'ask',
    error: { code: -32603, message: "the client's answer is nested too deeply to pass on" },
  });
});

test('a request that could not be written leaves nothing in flight', () => {
  const { mux, open } = setupUnwritable((m) => m.method === 'unwritable');
  const a = open();
  const b = open();
  assert.throws(() => a.channel.send(req(1, 'unwritable')), RangeError);
  b.channel.send(req(2, 'tools/call', { name: 'y' }));
  // Only b has a call in flight: its log line is its own.
  mux.fromUpstream(log("b's"));
  assert.equal(
    b.received.map((m) => m.method),
    ['notifications/message'],
  );
  assert.equal(a.received, []);
});

test('a log line reaches only the one session with a call in flight; with none or several, no one', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  const b = open();
  mux.fromUpstream(log('before any call'));
  a.channel.send(req(1, 'tools/call', { name: 'x' }));
  b.channel.send(req(2, 'tools/call', { name: 'y' }));
  mux.fromUpstream(log("a's or b's: no telling"));
  assert.equal([a.received, b.received], [[], []]);
  mux.fromUpstream({ jsonrpc: '2.0', id: (upstream[0] as { id: number }).id, result: {} });
  mux.fromUpstream(log("b's"));
  assert.equal(methods(a.received), ['response']);
  assert.equal(b.received, [{ message: log("b's"), related: 2 }]);
});

test('a notification the proxy does not know is no broadcast: it is treated as a log line', () => {
  const { mux, open } = setup();
  const a = open();
  const b = open();
  const status: JSONRPCMessage = {
    jsonrpc: '2.0',
    method: 'notifications/tasks/status',
    params: { taskId: 't' },
  };
  mux.fromUpstream(status);
  b.channel.send(req(2, 'tools/call', { name: 'y' }));
  mux.fromUpstream(status);
  assert.equal(a.received, []);
  assert.equal(b.received, [{ message: status, related: 2 }]);
});

test('list changes of each kind reach every session, busy or not', () => {
  const { mux, open } = setup();
  const a = open();
  const b = open();
  b.channel.send(req(2, 'tools/call', { name: 'y' }));
  const kinds = ['tools', 'prompts', 'resources'].map((k) => `notifications/${k}/list_changed`);
  for (const method of kinds) mux.fromUpstream({ jsonrpc: '2.0', method });
  assert.equal(methods(a.received), kinds);
  assert.equal(methods(b.received), kinds);
});

test('a server request the client declared no capability for is refused upstream, not sent', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  a.channel.send(req(0, 'initialize', { protocolVersion: '2025-11-25', capabilities: { sampling: {} } }));
  a.channel.send(req(5, 'tools/call', { name: 'ask' }));
  mux.fromUpstream(req(42, 'elicitation/create', { message: 'name?', requestedSchema: {} }));
  assert.equal(upstream.at(-1), {
    jsonrpc: '2.0',
    id: 42,
    error: {
      code: -32601,
      message: 'Method not found: the client did not declare the elicitation capability',
    },
  });
  assert.is(a.received.length, 1, 'only the initialize answer');
});

test('list changes reach every session; resource updates only the subscribers', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  const b = open();
  a.channel.send(req(1, 'resources/subscribe', { uri: 'test://r' }));
  mux.fromUpstream({ jsonrpc: '2.0', id: (upstream[0] as { id: number }).id, result: {} });
  mux.fromUpstream({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  mux.fromUpstream({
    jsonrpc: '2.0',
    method: 'notifications/resources/updated',
    params: { uri: 'test://r' },
  });
  assert.equal(
    a.received.map((r) => (r.message as { method?: string }).method ?? 'response'),
    ['response', 'notifications/tools/list_changed', 'notifications/resources/updated'],
  );
  assert.equal(
    b.received.map((r) => (r.message as { method?: string }).method),
    ['notifications/tools/list_changed'],
  );
});

test('unsubscribe reaches the upstream only when the last subscriber leaves', () => {
  const { upstream, open } = setup();
  const a = open();
  const b = open();
  a.channel.send(req(1, 'resources/subscribe', { uri: 'u' }));
  b.channel.send(req(1, 'resources/subscribe', { uri: 'u' }));
  const before = upstream.length;
  a.channel.send(req(2, 'resources/unsubscribe', { uri: 'u' }));
  assert.is(upstream.length, before, 'b still holds it');
  assert.equal(a.received.at(-1)!.message, { jsonrpc: '2.0', id: 2, result: {} });
  b.channel.close();
  assert.equal((upstream.at(-1) as { method: string }).method, 'resources/unsubscribe');
});

test('closing a session cancels its requests upstream and answers its pending server requests', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  a.channel.send(req(0, 'initialize', { protocolVersion: '2025-11-25', capabilities: { roots: {} } }));
  a.channel.send(req(1, 'tools/call', { name: 'slow' }));
  const upstreamId = (upstream[0] as { id: number }).id;
  mux.fromUpstream(req(77, 'roots/list'));
  assert.is(upstream.length, 1, 'roots/list went to the client, not answered yet');
  a.channel.close();
  const methods = upstream
    .slice(1)
    .map((m) => ('method' in m ? m.method : `answer ${(m as { id: number }).id}`));
  assert.equal(methods, ['notifications/cancelled', 'answer 77']);
  assert.equal((upstream[1] as { params: { requestId: number } }).params.requestId, upstreamId);
});

test('when the upstream is lost, requests in flight fail at once instead of hanging', () => {
  const { mux, open } = setup();
  const a = open();
  a.channel.send(req(9, 'tools/call', { name: 'slow' }));
  mux.upstreamLost('exited with code 1');
  const answer = a.received[0]!.message as { id: number; error: { message: string } };
  assert.is(answer.id, 9);
  assert.match(answer.error.message, 'upstream fixture exited with code 1');
});

test('after a restart, held subscriptions are renewed upstream', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  a.channel.send(req(1, 'resources/subscribe', { uri: 'u' }));
  mux.upstreamLost('restarted');
  upstream.length = 0;
  mux.upstreamReady(INIT);
  assert.equal(
    upstream.map((m) => [(m as { method: string }).method, (m as { params: { uri: string } }).params.uri]),
    [['resources/subscribe', 'u']],
  );
});

test('a request the upstream does not answer in time fails for the client and is cancelled upstream', async () => {
  const upstream: Loose[] = [];
  const mux = new Multiplexer(
    (m) => upstream.push(m),
    'slow',
    () => 50,
  );
  mux.upstreamReady(INIT);
  const channel = mux.openSession();
  const received: Loose[] = [];
  channel.listener = { deliver: (m) => received.push(m), upstreamClosed: () => {} };
  channel.send(req(4, 'tools/call', { name: 'hang' }));
  const upstreamId = upstream[0]!.id;
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(received[0], {
    jsonrpc: '2.0',
    id: 4,
    error: { code: -32001, message: 'upstream slow did not answer within 50 ms' },
  });
  assert.equal(upstream[1]!.method, 'notifications/cancelled');
  assert.is(upstream[1]!.params.requestId, upstreamId);
  mux.fromUpstream({ jsonrpc: '2.0', id: upstreamId, result: {} });
  assert.is(received.length, 1, 'a late answer is dropped');
});

test('progress keeps a long call alive past the timeout', async () => {
  const upstream: Loose[] = [];
  const mux = new Multiplexer(
    (m) => upstream.push(m),
    'slow',
    () => 80,
  );
  mux.upstreamReady(INIT);
  const channel = mux.openSession();
  const received: Loose[] = [];
  channel.listener = { deliver: (m) => received.push(m), upstreamClosed: () => {} };
  channel.send(req(1, 'tools/call', { name: 'long', _meta: { progressToken: 't' } }));
  const { id, params } = upstream[0]!;
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
    mux.fromUpstream({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: params._meta.progressToken, progress: i },
    });
  }
  mux.fromUpstream({ jsonrpc: '2.0', id, result: { done: true } });
  assert.equal(received.at(-1), { jsonrpc: '2.0', id: 1, result: { done: true } });
  assert.not.ok(
    received.some((m) => m.error),
    'no timeout error',
  );
});

test('while the upstream is down a request fails at once; once it is ready again it is forwarded', () => {
  const { mux, upstream, open } = setup();
  const a = open();
  mux.upstreamLost('exited with code 1');
  a.channel.send(req(7, 'tools/list'));
  assert.equal(upstream, [], 'nothing is written to a child that is gone');
  assert.is(a.received.length, 1);
  assert.is(a.received[0]!.message.id, 7);
  assert.match(a.received[0]!.message.error.message, 'is not running (exited with code 1)');
  mux.upstreamReady(INIT);
  a.channel.send(req(8, 'tools/list'));
  assert.is(upstream.length, 1);
  assert.is(upstream[0]!.method, 'tools/list');
});

test("a client's own text reaches the shared upstream only when it names id once", () => {
  const { upstream, open } = setup();
  const a = open();
  const pad = 'x'.repeat(70_000);
  const send = (text: string) => {
    const message = JSON.parse(text) as JSONRPCMessage;
    parsedFrom(message, text, Buffer.from(text));
    a.channel.send(message);
    const sent = upstream.at(-1) as JSONRPCMessage & { id: number };
    return { sent, written: framed('', sent, '').join('') };
  };
  // "id" twice: JSON.parse keeps the last (99); a parser that keeps the first would see 1.
  const twice = send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"pad":"${pad}"},"id":99}`);
  assert.is(twice.written, JSON.stringify(twice.sent));
  assert.equal(JSON.parse(twice.written).id, twice.sent.id);
  // Once, last: the client's text with the proxy's id in place of its own.
  const onceText = `{"method":"tools/call","params":{"pad":"${pad}"},"jsonrpc":"2.0","id":5}`;
  const once = send(onceText);
  assert.is.not(once.sent.id, 5);
  assert.is(once.written, onceText.replace('"id":5}', `"id":${once.sent.id}}`));
  // A progress token is rewritten: never the client's text.
  const tokenText = `{"method":"tools/call","params":{"pad":"${pad}","_meta":{"progressToken":"t"}},"jsonrpc":"2.0","id":6}`;
  const token = send(tokenText);
  assert.is(token.written, JSON.stringify(token.sent));
  assert.is.not((token.sent as Loose).params._meta.progressToken, 't');
});

test('members a child could read in place of those the proxy rewrites are refused, never forwarded', () => {
  const { upstream, open } = setup();
  const a = open();
  const confusing: Record<string, unknown>[] = [
    { name: 'echo', _META: { progressToken: 1 } }, // Go matches names case-insensitively
    { name: 'echo', _meta: { progress_token: 1 } }, // the Python SDK's name
    { name: 'echo', _meta: { progressToken: 'mine', ProgressToken: 1 } },
    { name: 'echo', _meta: { progreſſToken: 1 } }, // ſ folds to s
  ];
  confusing.forEach((params, i) => {
    a.channel.send(req(i + 1, 'tools/call', params));
    const answer = a.received.at(-1)!.message;
    assert.is(answer.id, i + 1);
    assert.is(answer.error.code, -32602, JSON.stringify(params));
  });
  assert.equal(upstream, [], 'nothing reached the child');
  // A cancellation that names its request twice is not sent on; the exact name alone is.
  a.channel.send(req(9, 'tools/call', { name: 'echo' }));
  const upstreamId = upstream[0]!.id as number;
  a.channel.send({
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: 9, RequestID: 1 },
  } as JSONRPCMessage);
  assert.is(upstream.length, 1);
  a.channel.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 9 } });
  assert.equal(upstream[1], {
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: upstreamId },
  });
});

test("a client's notification reaches the shared upstream serialized from what the proxy read", () => {
  const { upstream, open } = setup();
  const a = open();
  // "method" twice: the proxy acts on the last; a parser that keeps the first would cancel request 1.
  const text = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"${'x'.repeat(70_000)}"},"method":"notifications/roots/list_changed"}`;
  const message = JSON.parse(text) as JSONRPCMessage;
  parsedFrom(message, text, Buffer.from(text));
  a.channel.send(message);
  const written = framed('', upstream[0] as JSONRPCMessage, '').join('');
  assert.is(written, JSON.stringify(upstream[0]));
  assert.is.not(written, text);
});

test.run();
