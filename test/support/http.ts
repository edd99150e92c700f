import type { IncomingMessage, Server } from 'node:http';
import type { Server as TcpServer } from 'node:net';

/** `server`, listening on a free port of 127.0.0.1. */
export async function listen<S extends Server | TcpServer>(server: S): Promise<S> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Closes `server` (none: nothing to do), its open connections first: close() alone waits for them. */
export async function close(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** The whole body of a request or response, as text (decoded as one: a character may span two chunks). */
export async function readAll(message: IncomingMessage): Promise<string> {
  message.setEncoding('utf8');
  let body = '';
  for await (const chunk of message) body += chunk;
  return body;
}
