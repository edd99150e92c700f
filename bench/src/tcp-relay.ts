/**
 * A raw TCP relay in a process of its own: every connection is piped to the upstream's port, byte for byte,
 * with no HTTP in between. What it adds over calling the upstream directly is the floor of any extra hop on
 * this machine (two more loopback transfers and a third process to wake), against which the remote
 * passthrough's own share is read. Prints `tcp relay listening <port>`; listens on 127.0.0.1 only.
 *
 *   node bench/dist/tcp-relay.js <upstream url>
 */
import { connect, createServer } from 'node:net';

const upstream = new URL(process.argv[2] ?? '');
if (upstream.port === '') throw new Error('usage: tcp-relay.js <upstream url with a port>');

const relay = createServer((down) => {
  down.setNoDelay(true);
  const up = connect(Number(upstream.port), upstream.hostname);
  up.setNoDelay(true);
  down.pipe(up);
  up.pipe(down);
  down.on('error', () => up.destroy());
  up.on('error', () => down.destroy());
  down.on('close', () => up.destroy());
  up.on('close', () => down.destroy());
});
relay.listen(0, '127.0.0.1', () => {
  const address = relay.address();
  if (address && typeof address === 'object') process.stdout.write(`tcp relay listening ${address.port}\n`);
});
