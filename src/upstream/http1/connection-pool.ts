import type { Socket } from 'node:net';

/** What uses a connection for one exchange: told what the connection reads, and when it ends. */
export interface ConnectionUser {
  data(chunk: Buffer): void;
  /** The upstream has sent everything it will (EOF). */
  eof(): void;
  /** The connection has closed; `error` says why, when it failed. */
  closed(error: Error | undefined): void;
  /** What was written has gone out: more may be written. */
  drain(): void;
}

/** Opens a new connection to the upstream: directly, or through an egress proxy. */
export type Connect = (callback: (error: Error | null, socket?: Socket) => void) => void;

/** Node's agent keeps at most this many idle connections per upstream, and so does this. */
const MAX_IDLE = 256;
/** TCP keep-alive probes start after this long idle, as Node's agent's `keepAliveMsecs` default. */
const TCP_KEEP_ALIVE_DELAY_MS = 1000;
/**
 * How long an idle connection is reused when the upstream names no Keep-Alive timeout, as undici (fetch,
 * the SDK's own client) does. Servers close idle connections without saying when: uvicorn, which serves the
 * Python SDK's Streamable HTTP, after 5 s. A request sent as the server closes fails with no answer, and
 * cannot be sent again (a tools/call may have run). Decision 0032.
 */
const UNNAMED_TIMEOUT_REUSE_MS = 4000;

/**
 * One connection to the upstream. Its listeners are set once, when it opens, and pass what happens to the
 * exchange using it, if any: an exchange costs no listener of its own on the socket.
 */
export class Connection {
  user: ConnectionUser | undefined;
  /** Until when it may be used again once idle: the upstream's Keep-Alive timeout less a second, or 4 s. */
  reusableUntil = Infinity;
  private failure: Error | undefined;

  constructor(
    readonly socket: Socket,
    pool: ConnectionPool,
  ) {
    // Nothing may arrive between exchanges, not even the end: the connection is done for at once, before
    // its close event, so that no exchange takes it in between.
    const unused = () => {
      pool.forget(this);
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => (this.user ? this.user.data(chunk) : unused()));
    socket.on('end', () => (this.user ? this.user.eof() : unused()));
    socket.on('drain', () => this.user?.drain());
    socket.on('error', (error) => (this.failure ??= error));
    socket.on('close', () => {
      pool.forget(this);
      const { user } = this;
      this.user = undefined;
      user?.closed(this.failure);
    });
  }
}

/**
 * The upstream's connections: those idle, taken most recently used first (so that sequential exchanges keep
 * one warm connection, as Node's agent does with its 'lifo' scheduling), and new ones opened on demand.
 */
export class ConnectionPool {
  private readonly idle: Connection[] = [];
  private destroyed = false;

  constructor(private readonly connect: Connect) {}

  /** Gives `user` a connection: at once if one is idle, otherwise once a new one is open. */
  acquire(user: ConnectionUser, callback: (error: Error | null, connection?: Connection) => void): void {
    const now = Date.now();
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      // Past the upstream's keep-alive timeout, it may be closing the connection as this request goes out.
      if (connection.reusableUntil <= now || !connection.socket.writable) {
        connection.socket.destroy();
        continue;
      }
      connection.user = user;
      return callback(null, connection);
    }
    this.connect((error, socket) => {
      if (error || !socket) return callback(error ?? new Error('no connection'));
      if (this.destroyed) {
        socket.destroy();
        return callback(new Error('the server was stopped'));
      }
      socket.setNoDelay(true);
      // As Node's agent asks of its connections: a dead peer behind a NAT or balancer is noticed.
      socket.setKeepAlive(true, TCP_KEEP_ALIVE_DELAY_MS);
      const connection = new Connection(socket, this);
      connection.user = user;
      callback(null, connection);
    });
  }

  /**
   * Takes back a connection whose exchange has ended cleanly. `keepAliveSeconds`: the timeout of the
   * upstream's Keep-Alive header, if it sent one.
   */
  release(connection: Connection, keepAliveSeconds: number | undefined): void {
    connection.user = undefined;
    const reusableFor =
      keepAliveSeconds === undefined ? UNNAMED_TIMEOUT_REUSE_MS : (keepAliveSeconds - 1) * 1000;
    if (this.destroyed || reusableFor <= 0 || this.idle.length >= MAX_IDLE) {
      connection.socket.destroy();
      return;
    }
    connection.reusableUntil = Date.now() + reusableFor;
    // Paused for a client that read slowly, it must read again: to see the upstream close it, if nothing else.
    if (connection.socket.isPaused()) connection.socket.resume();
    this.idle.push(connection);
  }

  /** A connection has closed: idle or not, it is no longer offered. */
  forget(connection: Connection): void {
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
  }

  /** Closes the idle connections, and every connection opened from now on. */
  destroy(): void {
    this.destroyed = true;
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }
}
