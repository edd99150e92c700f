/**
 * The least a passthrough built on Node's HTTP server can do, in a process of its own: `node:http` takes the
 * request, which goes to the upstream over a raw keep-alive socket, and the answer is parsed just enough to
 * find its end (Content-Length or chunked). No checks of any kind: it trusts the upstream (the native
 * target's own server) to speak well-formed HTTP/1.1, so it is a yardstick for the bench, not a proxy.
 * What it adds over calling the upstream directly is what Node's HTTP server costs a hop on this machine,
 * against which the remote passthrough's own share is read. Prints `http floor listening <port>`; listens on
 * 127.0.0.1 only.
 *
 *   node bench/dist/http-floor.js <upstream url>
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

const upstream = new URL(process.argv[2] ?? '');
if (upstream.protocol !== 'http:') throw new Error('usage: http-floor.js <http upstream url>');

/** Request fields that describe this hop, not the message: the floor frames its own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host']);
const CRLF = Buffer.from('\r\n');

/** One response being read from the upstream and written to the client as it comes. */
class Relay {
  private pending: Buffer = Buffer.alloc(0);
  /** What is read next: the head, body bytes (`left` of them), a chunk's size line or its CRLF, the end. */
  private state: 'head' | 'body' | 'size' | 'crlf' | 'trailer' = 'head';
  private left = 0;
  private chunked = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly done: () => void,
  ) {}

  /** The upstream connection closed before the end: so does the client's. */
  abort(): void {
    this.res.destroy();
  }

  /** Bytes from the upstream; what they complete leaves for the client in one write. */
  read(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.state === 'head') {
        const end = this.pending.indexOf('\r\n\r\n');
        if (end === -1) break;
        this.head(this.pending.subarray(0, end).toString('latin1'));
        this.pending = this.pending.subarray(end + 4);
      } else if (this.state === 'body') {
        const take = Math.min(this.left, this.pending.length);
        out.push(this.pending.subarray(0, take));
        this.pending = this.pending.subarray(take);
        this.left -= take;
        if (this.left > 0) break;
        if (!this.chunked) return this.finish(out);
        this.state = 'crlf';
      } else if (this.state === 'crlf') {
        if (this.pending.length < 2) break;
        this.pending = this.pending.subarray(2);
        this.state = 'size';
      } else {
        const end = this.pending.indexOf(CRLF);
        if (end === -1) break;
        const line = this.pending.subarray(0, end).toString('latin1');
        this.pending = this.pending.subarray(end + 2);
        if (this.state === 'trailer') {
          if (line === '') return this.finish(out);
          continue;
        }
        this.left = parseInt(line, 16);
        this.state = this.left === 0 ? 'trailer' : 'body';
      }
    }
    if (out.length > 0) this.res.write(Buffer.concat(out));
  }

  private head(text: string): void {
    const [status, ...lines] = text.split('\r\n');
    const headers: Record<string, string | string[]> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'transfer-encoding') this.chunked = true;
      if (name === 'content-length') this.left = Number(value);
      if (name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding') continue;
      const had = headers[name];
      headers[name] = had === undefined ? value : [had, value].flat();
    }
    this.res.writeHead(Number(status!.split(' ')[1]), headers);
    this.state = this.chunked ? 'size' : 'body';
  }

  private finish(out: Buffer[]): void {
    this.res.end(Buffer.concat(out));
    this.done();
  }
}

/** Idle upstream connections, and what each one in use is relaying. */
const idle: Socket[] = [];
const relays = new Map<Socket, Relay>();

function open(): Socket {
  const socket = connect(Number(upstream.port), upstream.hostname);
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => relays.get(socket)?.read(chunk));
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    const at = idle.indexOf(socket);
    if (at !== -1) idle.splice(at, 1);
    relays.get(socket)?.abort();
    relays.delete(socket);
  });
  return socket;
}

function pass(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const socket = idle.pop() ?? open();
  let head = `${req.method} ${upstream.pathname}${upstream.search} HTTP/1.1\r\nhost: ${upstream.host}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(req.rawHeaders[i]!.toLowerCase())) {
      head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    }
  }
  head += `content-length: ${body.length}\r\n\r\n`;
  let finished = false;
  relays.set(
    socket,
    new Relay(res, () => {
      finished = true;
      relays.delete(socket);
      idle.push(socket);
    }),
  );
  // A client gone before its answer (a standing GET stream, say) leaves the connection mid-response.
  res.on('close', () => finished || socket.destroy());
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => pass(req, res, Buffer.concat(chunks)));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`http floor listening ${address.port}\n`);
});
