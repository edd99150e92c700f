import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  ConnectionPool,
  type Connection,
  type ConnectionUser,
} from '../../src/upstream/http1/connection-pool.js';
import { waitFor, within } from '../support/proxy.js';

// The upstream connection pool on real sockets to a TCP server on 127.0.0.1.

const BOUND_MS = 5_000;

interface Context {
  server: Server;
  /** The server's end of each connection, in the order they came. */
  accepted: Socket[];
  /** A new pool, destroyed after the test whatever its outcome. */
  pool: () => ConnectionPool;
  pools: ConnectionPool[];
}

const test = suite<Context>('connection pool', {} as Context);

test.before(async (context) => {
  context.accepted = [];
  context.server = createServer((socket) => {
    socket.on('error', () => {});
    context.accepted.push(socket);
  });
  await new Promise<void>((resolve) => context.server.listen(0, '127.0.0.1', resolve));
  const { port } = context.server.address() as AddressInfo;
  context.pools = [];
  context.pool = () => {
    const pool = new ConnectionPool((callback) => callback(null, connect({ host: '127.0.0.1', port })));
    context.pools.push(pool);
    return pool;
  };
});

test.after.each(({ pools }) => {
  for (const pool of pools.splice(0)) pool.destroy();
});

test.after(async ({ server, accepted }) => {
  for (const socket of accepted) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

/** A user that records what its connection tells it. */
function recorder(): ConnectionUser & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    data: (chunk) => events.push(`data ${chunk.toString()}`),
    eof: () => events.push('eof'),
    closed: (error) => events.push(`closed ${error?.message ?? ''}`.trim()),
    drain: () => events.push('drain'),
  };
}

/** A connection from `pool`, within the test's bound: a pool that never calls back fails the test. */
function acquire(pool: ConnectionPool, user: ConnectionUser): Promise<Connection> {
  return within(
    new Promise((resolve, reject) =>
      pool.acquire(user, (error, connection) => (error ? reject(error) : resolve(connection!))),
    ),
    'a connection',
    BOUND_MS,
  );
}

/**
 * The server's end of `connection`, once the server has accepted it: found by port, since a connection an
 * earlier test opened may be accepted late, after this one's.
 */
async function serverEndOf(context: Context, connection: Connection): Promise<Socket> {
  const find = () => context.accepted.find((socket) => socket.remotePort === connection.socket.localPort);
  await waitFor(
    () => connection.socket.localPort !== undefined && find() !== undefined,
    BOUND_MS,
    'the connection',
  );
  return find()!;
}

test('a released connection is the next one taken, and what it reads goes to its user of the moment', async (context) => {
  const pool = context.pool();
  const first = recorder();
  const connection = await acquire(pool, first);
  const server = await serverEndOf(context, connection);
  pool.release(connection, undefined);
  const second = recorder();
  assert.is(await acquire(pool, second), connection);
  server.write('hello');
  await waitFor(() => second.events.length > 0, BOUND_MS, 'the data');
  assert.equal(second.events, ['data hello']);
  assert.equal(first.events, []);
});

test('a connection paused for a slow client reads again once released', async (context) => {
  const pool = context.pool();
  const connection = await acquire(pool, recorder());
  connection.socket.pause();
  pool.release(connection, undefined);
  assert.is(connection.socket.isPaused(), false);
});

test("past the upstream's keep-alive timeout, less a second, an idle connection is closed instead of reused", async (context) => {
  const pool = context.pool();
  const connection = await acquire(pool, recorder());
  pool.release(connection, 2);
  connection.reusableUntil = Date.now() - 1; // as if its second had passed
  const next = await acquire(pool, recorder());
  assert.is.not(next, connection);
  await waitFor(() => connection.socket.destroyed, BOUND_MS, 'the stale connection to close');
  const short = await acquire(pool, recorder());
  pool.release(short, 1); // timeout=1 leaves no time to reuse it at all
  await waitFor(() => short.socket.destroyed, BOUND_MS, 'the connection with no time left to close');
});

test('an upstream that names no keep-alive timeout has an idle connection reused for 4 s, as fetch does', async (context) => {
  const pool = context.pool();
  const connection = await acquire(pool, recorder());
  const before = Date.now();
  pool.release(connection, undefined);
  const after = Date.now();
  assert.ok(
    connection.reusableUntil >= before + 4000 && connection.reusableUntil <= after + 4000,
    `reusable for ${connection.reusableUntil - before} ms`,
  );
  assert.is(await acquire(pool, recorder()), connection);
});

// The pool's own listeners run first: the extra ones below run as an exchange would that asks for a
// connection right then, before the socket's close event.
for (const [what, provoke, event] of [
  ['writes to', (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'), 'data'],
  ['closes', (socket: Socket) => socket.end(), 'end'],
] as const) {
  test(`an idle connection the upstream ${what} is dropped at once, never handed out`, async (context) => {
    const pool = context.pool();
    const idle = await acquire(pool, recorder());
    const server = await serverEndOf(context, idle);
    pool.release(idle, undefined);
    let handedOut: Connection | undefined;
    idle.socket.once(event, () => pool.acquire(recorder(), (_, connection) => (handedOut = connection)));
    provoke(server);
    await waitFor(() => handedOut !== undefined, BOUND_MS, 'a connection handed out');
    assert.is.not(handedOut, idle);
    assert.ok(idle.socket.destroyed);
    assert.ok(handedOut!.socket.writable && !handedOut!.socket.destroyed);
    handedOut!.socket.destroy();
  });
}

test("a connection in use tells its user of the upstream's end and of the close", async (context) => {
  const pool = context.pool();
  const user = recorder();
  const connection = await acquire(pool, user);
  (await serverEndOf(context, connection)).end('bye');
  await waitFor(() => user.events.includes('closed'), BOUND_MS, 'the close');
  assert.equal(user.events, ['data bye', 'eof', 'closed']);
});

test('destroy() closes the idle connections and any opened after it', async (context) => {
  const pool = context.pool();
  const idle = await acquire(pool, recorder());
  pool.release(idle, undefined);
  pool.destroy();
  await waitFor(() => idle.socket.destroyed, BOUND_MS, 'the idle connection to close');
  let refused: Error | undefined;
  await within(
    new Promise<void>((resolve) =>
      pool.acquire(recorder(), (error) => {
        refused = error ?? undefined;
        resolve();
      }),
    ),
    'the refusal',
    BOUND_MS,
  );
  assert.match(refused?.message ?? '', 'stopped');
});

test("a new connection asks for TCP keep-alive, as Node's agent did", async (context) => {
  const pool = context.pool();
  const connection = await acquire(pool, recorder());
  await waitFor(() => connection.socket.localPort !== undefined, BOUND_MS, 'the connection');
  // Linux shows an armed keep-alive timer as `02` in the timer column of /proc/net/tcp; Node has no getter.
  const localPort = `:${connection.socket.localPort!.toString(16).toUpperCase().padStart(4, '0')}`;
  const entry = () =>
    readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find((fields) => fields[1]?.endsWith(localPort) && fields[3] === '01'); // 01: established
  await waitFor(() => entry() !== undefined, BOUND_MS, 'the connection in /proc/net/tcp');
  assert.match(entry()![5]!, /^02:/, 'no keep-alive timer on the connection');
  connection.socket.destroy();
});

test.run();
