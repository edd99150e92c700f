/**
 * Preloaded (`node --import`) into peers that cannot be told which address to bind (supergateway listens
 * on every interface): every TCP listen goes to 127.0.0.1, so the bench never exposes a port.
 */
import net from 'node:net';

const LOOPBACK = '127.0.0.1';
const original = net.Server.prototype.listen;

function isPort(value: unknown): boolean {
  return typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value));
}

net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]): net.Server {
  const [first] = args;
  if (isPort(first)) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === 'string') args[1] = LOOPBACK;
    else args.splice(1, 0, LOOPBACK);
  } else if (first === undefined || typeof first === 'function') {
    args.splice(0, first === undefined ? 1 : 0, { port: 0, host: LOOPBACK });
  } else if (typeof first === 'object' && first !== null && !('path' in first) && !('fd' in first)) {
    if (!('handle' in first) && !('_handle' in first)) args[0] = { ...first, host: LOOPBACK };
  }
  return (original as (...a: unknown[]) => net.Server).apply(this, args);
} as typeof original;
