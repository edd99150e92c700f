import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { SseStream, type SseTiming } from '../../src/downstream/sse-stream.js';
import { within } from '../support/proxy.js';

// SseStream on a real HTTP server and client on 127.0.0.1: what goes on the wire, and when. Every wait is
// bounded: a stream that never ends must fail its test, not hang the suite.

interface Exchange {
  res: ServerResponse;
  /** Resolves with the client's response once its headers arrive. */
  headers: Promise<IncomingMessage>;
  /** Everything the client has received so far. */
  received: () => string;
  /** Resolves when the client's response has ended. */
  ended: Promise<void>;
}

const test = suite<{ exchange: () => Promise<Exchange>; close: () => Promise<void> }>(
  'sse stream',
  {} as never,
);

test.before(async (ctx) => {
  const waiting: ((res: ServerResponse) => void)[] = [];
  const server = createServer((_req, res) => waiting.shift()!(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  ctx.exchange = async () => {
    const res = new Promise<ServerResponse>((resolve) => waiting.push(resolve));
    let body = '';
    let ended!: () => void;
    const endedPromise = new Promise<void>((resolve) => (ended = resolve));
    const headers = new Promise<IncomingMessage>((resolve) => {
      request({ host: '127.0.0.1', port, path: '/' }, (incoming) => {
        incoming.setEncoding('utf8');
        incoming.on('data', (chunk: string) => (body += chunk));
        incoming.on('end', ended);
        resolve(incoming);
      }).end();
    });
    return {
      res: await within(res, 'the request to reach the server'),
      headers,
      received: () => body,
      ended: endedPromise,
    };
  };
  ctx.close = () => {
    // A stream a failed test left open would keep close() waiting for ever.
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  };
});

test.after(async (ctx) => {
  await ctx.close();
});

const HEADERS = { 'content-type': 'text/event-stream', 'mcp-session-id': 's1' };
const answer = (id: number) => ({ jsonrpc: '2.0' as const, id, result: { n: id } });
const slow: SseTiming = { headersAfterMs: 60_000, keepAliveMs: 60_000 };

test('a quick answer, all the stream owes, goes out as one JSON message with its length', async (ctx) => {
  const x = await ctx.exchange();
  const stream = new SseStream(x.res, HEADERS, 1, slow);
  stream.respond(answer(1));
  const incoming = await within(x.headers, 'the response headers');
  await within(x.ended, 'the end of the response');
  assert.is(incoming.statusCode, 200);
  assert.is(incoming.headers['content-type'], 'application/json');
  assert.is(incoming.headers['mcp-session-id'], 's1');
  assert.is(incoming.headers['content-length'], String(JSON.stringify(answer(1)).length));
  assert.is(x.received(), JSON.stringify(answer(1)));
});

test('an answer after the headers went out is an SSE event that ends the stream', async (ctx) => {
  const x = await ctx.exchange();
  const stream = new SseStream(x.res, HEADERS, 1, { headersAfterMs: 10, keepAliveMs: 60_000 });
  const incoming = await within(x.headers, 'the response headers');
  assert.is(incoming.headers['content-type'], 'text/event-stream');
  stream.respond(answer(1));
  await within(x.ended, 'the end of the response');
  assert.is(x.received(), `event: message\ndata: ${JSON.stringify(answer(1))}\n\n`);
});

test('a stream owing two answers ends with the second, after what relates to them', async (ctx) => {
  const x = await ctx.exchange();
  const stream = new SseStream(x.res, HEADERS, 2, slow);
  const progress = { jsonrpc: '2.0' as const, method: 'notifications/progress', params: { progress: 1 } };
  stream.send(progress);
  stream.respond(answer(1));
  assert.not.ok(x.res.writableEnded);
  stream.respond(answer(2));
  await within(x.ended, 'the end of the response');
  const events = x.received().split('\n\n').filter(Boolean);
  assert.equal(
    events.map((e) => JSON.parse(e.split('data: ')[1]!)),
    [progress, answer(1), answer(2)],
  );
});

test('headers go out once the wait is over, before any event', async (ctx) => {
  const x = await ctx.exchange();
  const stream = new SseStream(x.res, HEADERS, 1, { headersAfterMs: 30, keepAliveMs: 60_000 });
  // Would time out without the timer: no event is ever sent.
  const incoming = await within(x.headers, 'the response headers');
  assert.is(incoming.headers['content-type'], 'text/event-stream');
  assert.is(x.received(), '');
  stream.end();
  await within(x.ended, 'the end of the response');
});

test('a quiet stream gets keep-alive comments', async (ctx) => {
  const x = await ctx.exchange();
  const stream = new SseStream(x.res, HEADERS, 0, { headersAfterMs: 0, keepAliveMs: 20 });
  await within(x.headers, 'the response headers');
  const deadline = Date.now() + 5000;
  while (!x.received().includes(': keepalive\n\n') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.match(x.received(), ': keepalive\n\n');
  stream.end();
  await within(x.ended, 'the end of the response');
});

test('nothing is written after the client has gone', async (ctx) => {
  const x = await ctx.exchange();
  const stream = new SseStream(x.res, HEADERS, 1, { headersAfterMs: 0, keepAliveMs: 60_000 });
  (await within(x.headers, 'the response headers')).destroy();
  await within(new Promise((resolve) => x.res.once('close', resolve)), 'the server to see the client gone');
  stream.stop();
  stream.respond(answer(1)); // must neither throw nor end what is already gone
  assert.not.ok(x.res.writableEnded);
});

test.run();
