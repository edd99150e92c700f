import { connect as tcpConnect } from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  fixtureCommand,
  postInitialize,
  postToSession,
  startProxy,
  waitFor,
  type RunningProxy,
} from '../support/proxy.js';

// The Streamable HTTP transport as the proxy serves it itself (decision 0020), through a real proxy and a
// real child, with raw HTTP so every status, header and event can be seen.

const echo = fixtureCommand('echo');
const conformance = fixtureCommand('conformance');
const confArgs = JSON.stringify([...conformance.args, 'stdio']);
// `slow` starts on first use and takes a second to: time for a client to give up on its initialize.
const slowArgs = ['-c', 'sleep 1; exec "$0" "$@"', echo.command, ...echo.args];
const manifest = `
servers:
  echo: { command: ${JSON.stringify(echo.command)}, args: ${JSON.stringify(echo.args)} }
  slow: { command: sh, args: ${JSON.stringify(slowArgs)}, startup: lazy, idleTimeout: 1s }
  conf: { command: ${JSON.stringify(conformance.command)}, args: ${confArgs} }
  conf-own: { command: ${JSON.stringify(conformance.command)}, args: ${confArgs}, isolation: session }
`;

const test = suite<{ proxy: RunningProxy; endpoint: string }>('streamable http', {} as never);

test.before(async (ctx) => {
  // Debug: the proxy then logs an answer that has nowhere to go, which a test below waits for.
  ctx.proxy = await startProxy(manifest, { env: { LOG_LEVEL: 'debug' } });
  ctx.endpoint = `${ctx.proxy.url}/servers/echo/mcp`;
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

/** A new session, initialized, its client declaring `capabilities`. */
async function open(endpoint: string, capabilities = {}): Promise<{ endpoint: string; session: string }> {
  const response = await postInitialize(endpoint, {}, { capabilities });
  assert.is(response.status, 200);
  const session = response.headers.get('mcp-session-id');
  assert.ok(session, 'initialize answered with a session id');
  await response.text();
  const initialized = await postToSession(
    { endpoint, session },
    JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  );
  assert.is(initialized.status, 202);
  return { endpoint, session };
}

type Message = Record<string, unknown>;

/** The JSON-RPC messages of an SSE body, in order. */
const events = (body: string): Message[] =>
  body
    .split('\n\n')
    .filter((event) => event.includes('data: '))
    .map((event) => JSON.parse(event.slice(event.indexOf('data: ') + 6)) as Message);

/** The messages of a POST's answer, which is one JSON message or an SSE stream (the server chooses). */
async function messagesOf(r: Response): Promise<Message[]> {
  const body = await r.text();
  return r.headers.get('content-type') === 'application/json' ? [JSON.parse(body) as Message] : events(body);
}

const call = (id: number | string, name: string, args: object, meta?: object) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta && { _meta: meta }) },
});

test('a quick call is answered with one JSON message that carries the session id and its length', async (ctx) => {
  const target = await open(ctx.endpoint);
  const r = await postToSession(target, JSON.stringify(call(7, 'echo', { text: 'hi' })));
  assert.is(r.status, 200);
  assert.is(r.headers.get('content-type'), 'application/json');
  assert.is(r.headers.get('mcp-session-id'), target.session);
  const body = await r.text();
  assert.is(r.headers.get('content-length'), String(Buffer.byteLength(body)));
  assert.equal(JSON.parse(body), {
    jsonrpc: '2.0',
    id: 7,
    result: { content: [{ type: 'text', text: 'hi' }] },
  });
});

test('a large answer goes as JSON too, whole, with the client id in it', async (ctx) => {
  const target = await open(ctx.endpoint);
  const text = 'é'.repeat(300 * 1024); // two bytes each in UTF-8: the length counts bytes, not characters
  const r = await postToSession(target, JSON.stringify(call('big', 'echo', { text })));
  assert.is(r.headers.get('content-type'), 'application/json');
  const body = await r.text();
  assert.is(r.headers.get('content-length'), String(Buffer.byteLength(body)));
  assert.equal(JSON.parse(body), {
    jsonrpc: '2.0',
    id: 'big',
    result: { content: [{ type: 'text', text }] },
  });
});

test('progress travels on its request stream, before the answer', async (ctx) => {
  const target = await open(ctx.endpoint);
  const r = await postToSession(
    target,
    JSON.stringify(call('p', 'sleep', { ms: 40 }, { progressToken: 'tok' })),
  );
  // Progress came first, so the answer is an SSE stream.
  assert.is(r.headers.get('content-type'), 'text/event-stream');
  const messages = events(await r.text());
  assert.equal(
    messages.map((m) => m.method ?? m.id),
    [
      'notifications/progress',
      'notifications/progress',
      'notifications/progress',
      'notifications/progress',
      'p',
    ],
  );
});

test('a batch is answered on one stream that ends after the last of its answers', async (ctx) => {
  const target = await open(ctx.endpoint);
  const r = await postToSession(
    target,
    JSON.stringify([
      call('slow', 'sleep', { ms: 200 }),
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
      call('quick', 'echo', { text: 'q' }),
    ]),
  );
  assert.is(r.status, 200);
  assert.is(r.headers.get('content-type'), 'text/event-stream');
  assert.equal(
    events(await r.text()).map((m) => m.id),
    ['quick', 'slow'],
  );
});

test('notifications alone are accepted with 202 and no body', async (ctx) => {
  const target = await open(ctx.endpoint);
  const r = await postToSession(
    target,
    JSON.stringify({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }),
  );
  assert.is(r.status, 202);
  assert.is(r.headers.get('content-length'), '0');
  assert.is(r.headers.get('transfer-encoding'), null);
  assert.is(await r.text(), '');
});

test('a slow call shows its stream open long before its answer', async (ctx) => {
  const target = await open(ctx.endpoint);
  const started = Date.now();
  const r = await postToSession(target, JSON.stringify(call(1, 'sleep', { ms: 3000 })));
  const body = r.text();
  // The headers wait 100 ms for an answer, then go out: a second after them, the answer is still to come.
  // Had they waited for it, the body would be here at once.
  const first = await Promise.race([
    body.then(() => 'the answer'),
    new Promise((resolve) => setTimeout(resolve, 1000, 'nothing yet')),
  ]);
  assert.is(first, 'nothing yet', 'the headers came with the answer');
  const answer = await body;
  const answeredAfter = Date.now() - started;
  assert.is(r.status, 200);
  assert.ok(answeredAfter >= 3000, `answered after ${answeredAfter} ms`);
  assert.is(r.headers.get('content-type'), 'text/event-stream');
  assert.is(events(answer)[0]!.id, 1);
});

test('a second initialize on a session, or initialize in a batch, is refused', async (ctx) => {
  const target = await open(ctx.endpoint);
  const initialize = {
    jsonrpc: '2.0',
    id: 9,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
  };
  const again = await postToSession(target, JSON.stringify(initialize));
  assert.is(again.status, 400);
  assert.match(await again.text(), 'Server already initialized');

  const batch = await fetch(ctx.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify([initialize, { jsonrpc: '2.0', id: 10, method: 'ping' }]),
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(batch.status, 400);
  assert.match(await batch.text(), 'Only one initialization request');
});

test('a new GET stream takes over from the one before; it carries nothing unasked and ends with DELETE', async (ctx) => {
  const target = await open(ctx.endpoint);
  const headers = {
    accept: 'text/event-stream',
    'mcp-session-id': target.session,
    'mcp-protocol-version': '2025-11-25',
  };
  // Bounded: the stream ends only when DELETE ends it, and its keep-alives keep it from ever timing out.
  const first = await fetch(ctx.endpoint, { headers, signal: AbortSignal.timeout(10_000) });
  assert.is(first.status, 200);
  assert.is(first.headers.get('content-type'), 'text/event-stream');
  // A client whose stream died unseen (a NAT timed out) opens another: it is not refused for the old one.
  const second = await fetch(ctx.endpoint, { headers, signal: AbortSignal.timeout(10_000) });
  assert.is(second.status, 200);
  assert.is(await first.text(), '', 'the first stream ended when the second came');
  const refusedAccept = await fetch(ctx.endpoint, {
    headers: { ...headers, accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(refusedAccept.status, 406);
  await refusedAccept.text();

  const body = second.text();
  const deleted = await fetch(ctx.endpoint, {
    method: 'DELETE',
    headers,
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(deleted.status, 200);
  assert.is(deleted.headers.get('content-length'), '0', 'an empty answer, not an empty chunked one');
  assert.is(await deleted.text(), '');
  assert.is(await body, '', 'the GET stream ended when the session did');
  const after = await postToSession(target, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }));
  assert.is(after.status, 404);
  await after.text();
});

test('two calls of a session asking for sampling, with no GET stream open, both reach the client', async (ctx) => {
  // The child's requests then name no one call the proxy could tell; they used to be dropped, and the
  // child waited out its own timeout. Shared child and a session's own child alike.
  for (const name of ['conf', 'conf-own']) {
    const target = await open(`${ctx.proxy.url}/servers/${name}/mcp`, { sampling: {} });
    const signal = AbortSignal.timeout(10_000);
    const calls = [
      call('a', 'test_sampling', { prompt: 'one' }),
      call('b', 'test_sampling', { prompt: 'two' }),
    ];
    const batch = await postToSession(target, JSON.stringify(calls), {}, signal);
    const reader = batch.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let asked = 0;
    const answered: unknown[] = [];
    for (let done = false; !done && answered.length < 2;) {
      const chunk = await reader.read(); // the signal bounds it
      done = chunk.done;
      buffer += chunk.value ?? '';
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const [message] = events(buffer.slice(0, end + 2));
        buffer = buffer.slice(end + 2);
        if (message?.method === 'sampling/createMessage') {
          asked++;
          const reply = { role: 'assistant', content: { type: 'text', text: `reply ${asked}` }, model: 'm' };
          const posted = await postToSession(
            target,
            JSON.stringify({ jsonrpc: '2.0', id: message.id, result: reply }),
            {},
            signal,
          );
          assert.is(posted.status, 202, name);
        } else if (message && 'result' in message) answered.push(message.id);
      }
    }
    assert.is(asked, 2, `${name}: both requests reached the client`);
    assert.equal(answered.sort(), ['a', 'b'], `${name}: both calls finished`);
  }
});

test('a client that declared no sampling capability is not asked: the call fails at once', async (ctx) => {
  const target = await open(`${ctx.proxy.url}/servers/conf/mcp`);
  const r = await postToSession(target, JSON.stringify(call(1, 'test_sampling', { prompt: 'x' })));
  const [answer] = await messagesOf(r);
  assert.match(JSON.stringify(answer), 'did not declare the sampling capability');
});

test('a call in flight when its session is deleted is answered with an error, not an empty stream', async (ctx) => {
  const target = await open(ctx.endpoint);
  // Its headers come after 100 ms, while the child sleeps.
  const pending = await postToSession(target, JSON.stringify(call('long', 'sleep', { ms: 5000 })));
  const deleted = await fetch(ctx.endpoint, {
    method: 'DELETE',
    headers: { 'mcp-session-id': target.session, 'mcp-protocol-version': '2025-11-25' },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(deleted.status, 200);
  await deleted.text();
  assert.equal(await messagesOf(pending), [
    { jsonrpc: '2.0', id: 'long', error: { code: -32000, message: 'the session was deleted' } },
  ]);
});

test("a cancelled call's stream ends: nothing more is owed on it", async (ctx) => {
  // The SDK's client does not close it: it stayed open, and its session busy, as long as the client lived.
  const target = await open(ctx.endpoint);
  const pending = await postToSession(target, JSON.stringify(call('gone', 'sleep', { ms: 60_000 })));
  const cancel = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'gone' } };
  const cancelled = await postToSession(target, JSON.stringify(cancel));
  assert.is(cancelled.status, 202);
  assert.equal(await messagesOf(pending), [], 'ended, within the 10 s its request is given');
});

test('a client that stops reading has its stream cut, not held in memory', async (ctx) => {
  // A shared child cannot be slowed down for one client: 100 MiB of progress meant for a client that reads
  // none of it used to pile up in the proxy.
  const target = await open(ctx.endpoint);
  const body = JSON.stringify(
    call('flood', 'flood', { count: 200, size: 512 * 1024 }, { progressToken: 'p' }),
  );
  const socket = tcpConnect(Number(new URL(ctx.proxy.url).port), '127.0.0.1');
  socket.on('error', () => {}); // cut by the proxy, on purpose
  socket.pause(); // and never read
  socket.write(
    'POST /servers/echo/mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
      `Accept: application/json, text/event-stream\r\nMcp-Session-Id: ${target.session}\r\n` +
      `Mcp-Protocol-Version: 2025-11-25\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  try {
    await waitFor(
      () =>
        ctx.proxy
          .stderr()
          .split('\n')
          .some((line) => line.includes('"event":"client-not-reading"') && line.includes(target.session)),
      30_000,
      'the proxy to cut the stream',
    );
  } finally {
    socket.destroy();
  }
  // The session goes on: the next call is answered.
  const r = await postToSession(target, JSON.stringify(call('after', 'echo', { text: 'ok' })));
  assert.equal(
    (await messagesOf(r)).map((m) => m.id),
    ['after'],
  );
});

test('a request whose client left does not disturb the next one on the session', async (ctx) => {
  const target = await open(ctx.endpoint);
  // Its headers come after 100 ms; then the client drops the stream while the call still runs.
  const left = await postToSession(target, JSON.stringify(call('gone', 'sleep', { ms: 500 })));
  await left.body!.cancel();
  await waitFor(
    () =>
      ctx.proxy
        .stderr()
        .split('\n')
        .some((line) => line.includes('"event":"deliver-failed"') && line.includes(target.session)),
    10_000,
    'its answer to arrive with nowhere to go',
  );
  const r = await postToSession(target, JSON.stringify(call('next', 'echo', { text: 'ok' })));
  assert.equal(
    (await messagesOf(r)).map((m) => m.id),
    ['next'],
  );
});

test('large messages keep their own ids: two sessions, the same request id, a different 1 MiB each', async (ctx) => {
  const [a, b] = await Promise.all([open(ctx.endpoint), open(ctx.endpoint)]);
  const texts = ['a'.repeat(1 << 20), 'b'.repeat(1 << 20)];
  // The SDK writes the id last, as here, which is what lets the proxy splice ids into the text.
  const request = (text: string) => ({
    method: 'tools/call',
    params: { name: 'echo', arguments: { text } },
    jsonrpc: '2.0',
    id: 1,
  });
  const answers = await Promise.all(
    [a, b].map(async (target, i) =>
      messagesOf(await postToSession(target!, JSON.stringify(request(texts[i]!)))),
    ),
  );
  for (const [i, [answer]] of answers.entries()) {
    assert.is(answer!.id, 1);
    const { content } = answer!.result as { content: { text: string }[] };
    assert.ok(content[0]!.text === texts[i], `session ${i} got its own text back`);
  }
});

test("large answers on an SSE stream arrive whole, each under its own id, as the child's bytes", async (ctx) => {
  const target = await open(ctx.endpoint);
  // A batch is answered as a stream: each large answer goes as an event of the child's bytes, id spliced.
  const texts = ['é'.repeat(200 * 1024), `${'x'.repeat(300 * 1024)}ü`];
  const r = await postToSession(
    target,
    JSON.stringify(texts.map((text, i) => call(`big-${i}`, 'echo', { text }))),
  );
  assert.is(r.headers.get('content-type'), 'text/event-stream');
  const answers = await messagesOf(r);
  assert.equal(answers.map((m) => m.id).sort(), ['big-0', 'big-1']);
  for (const answer of answers) {
    const { content } = answer.result as { content: { text: string }[] };
    assert.ok(content[0]!.text === texts[Number(String(answer.id).slice(4))], `${String(answer.id)} whole`);
  }
});

test('a large request with a line break in it still reaches the child as one line', async (ctx) => {
  const target = await open(ctx.endpoint);
  const text = 'p'.repeat(100_000);
  const compact = JSON.stringify({
    method: 'tools/call',
    params: { name: 'echo', arguments: { text } },
    jsonrpc: '2.0',
    id: 3,
  });
  // JSON whitespace may be a line break; the id stays last and compact, so the proxy could splice it.
  const body = `{\n${compact.slice(1)}`;
  // A child that got the request in two broken lines never answers: fail in time rather than hang.
  const answered = postToSession(target, body).then(messagesOf);
  const late = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref(),
  );
  const [answer] = await Promise.race([answered, late]);
  assert.is(answer?.id, 3);
  assert.ok((answer!.result as { content: { text: string }[] }).content[0]!.text === text);
});

test('a request id already in use in the session is refused', async (ctx) => {
  const target = await open(ctx.endpoint);
  const twice = await postToSession(
    target,
    JSON.stringify([call(5, 'echo', { text: 'a' }), call(5, 'echo', { text: 'b' })]),
  );
  assert.is(twice.status, 400);
  assert.match(await twice.text(), 'already in use');

  // Its headers are out (after 100 ms, long before its answer): the id is waiting.
  const slow = await postToSession(target, JSON.stringify(call('busy', 'sleep', { ms: 500 })));
  const again = await postToSession(target, JSON.stringify(call('busy', 'echo', { text: 'x' })));
  assert.is(again.status, 400);
  await again.text();
  assert.equal(
    events(await slow.text()).map((m) => m.id),
    ['busy'],
  );
});

test('a client that gives up while its session is being opened leaves no session behind', async (ctx) => {
  const slowEndpoint = `${ctx.proxy.url}/servers/slow/mcp`;
  const sessionsOfSlow = async () => {
    const listing = (await (
      await fetch(`${ctx.proxy.url}/servers`, { signal: AbortSignal.timeout(10_000) })
    ).json()) as {
      servers: { name: string; state: string; sessions: number }[];
    };
    return listing.servers.find((s) => s.name === 'slow')!;
  };
  await postInitialize(slowEndpoint, {}, { signal: AbortSignal.timeout(300) }).then(
    () => assert.unreachable('the child takes a second to start'),
    () => {},
  );
  await waitFor(async () => (await sessionsOfSlow()).state === 'ready', 10_000, 'the slow child to be ready');
  // The given-up session was settled as the child became ready, before this one is opened. Had it been
  // kept, it would be counted beside this one, and its stream could never close: never idle, never reaped.
  const opened = await open(slowEndpoint);
  assert.is((await sessionsOfSlow()).sessions, 1);
  const deleted = await fetch(slowEndpoint, {
    method: 'DELETE',
    headers: { 'mcp-session-id': opened.session, 'mcp-protocol-version': '2025-11-25' },
    signal: AbortSignal.timeout(10_000),
  });
  assert.is(deleted.status, 200);
});

test.run();
