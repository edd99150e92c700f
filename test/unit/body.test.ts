import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { readBody, type BodyResult } from '../../src/downstream/body.js';

// readBody on a real server and client on 127.0.0.1.

/** Serves one request: `handle` gets it; what it resolves is the test's answer. */
async function serveOne(
  send: (port: number) => void,
  handle: (req: IncomingMessage) => Promise<BodyResult>,
): Promise<BodyResult> {
  const server = createServer();
  const result = new Promise<BodyResult>((resolve) => {
    server.once('request', (req: IncomingMessage, res) => {
      void handle(req).then((body) => {
        res.end();
        resolve(body);
      });
    });
  });
  server.listen(0, '127.0.0.1', () => send((server.address() as AddressInfo).port));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('readBody never settled')), 5000);
  });
  try {
    return await Promise.race([result, timeout]);
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}

/** A client that announces 100 bytes, sends a few and goes away after `ms`. */
const sendPartThenLeave = (ms: number) => (port: number) => {
  const client = request({ host: '127.0.0.1', port, method: 'POST', headers: { 'content-length': 100 } });
  client.on('error', () => {});
  client.write('{"partial":');
  setTimeout(() => client.destroy(), ms);
};

test('a body is read whole', async () => {
  const result = await serveOne(
    (port) =>
      request({ host: '127.0.0.1', port, method: 'POST' })
        .on('error', () => {})
        .end('{"é":1}'),
    (req) => readBody(req, 1024),
  );
  assert.equal(result, { ok: true, text: '{"é":1}', bytes: Buffer.from('{"é":1}') });
});

test('a client that left before the body was read settles it, rather than leaving it waiting for ever', async () => {
  const result = await serveOne(
    sendPartThenLeave(50),
    // As when access control takes its time: the client is gone before the body is asked for.
    async (req) => {
      await new Promise((resolve) => req.once('close', resolve));
      return readBody(req, 1024);
    },
  );
  assert.is(result.ok, false);
});

test('a client that leaves while its body is being read settles it too', async () => {
  const result = await serveOne(sendPartThenLeave(100), (req) => readBody(req, 1024));
  assert.is(result.ok, false);
});

test.run();
