import { once } from 'node:events';
import type { Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { Fleet } from '../fleet/fleet.js';
import { createApp } from '../gateway/app.js';
import { createLogger, parseLevel } from '../log.js';
import { formatDiagnostic } from '../manifest/diagnostics.js';
import type { Environment } from '../manifest/interpolate.js';
import { loadManifest } from '../manifest/load.js';
import { readManifestBytes } from '../manifest/read.js';
import { SINGLE_SERVER_NAME, singleServerManifest, wantsSingleServer } from '../manifest/single-server.js';
import type { Manifest } from '../manifest/types.js';

export interface ServeOptions {
  /** `-c FILE`, when given: it always wins over single-server mode. */
  config?: string;
  host?: string;
  port?: string;
  env: Environment;
  defaultManifest: string;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 8000;
/** How long in-flight requests may take to finish after SIGTERM before sessions are closed anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

/** `mcp-proxy serve`: loads the manifest (or the single-server variables), starts the fleet, serves. */
export async function serveCommand(options: ServeOptions): Promise<number> {
  const { env } = options;
  const log = createLogger(parseLevel(env.LOG_LEVEL));
  const err = (line: string) => process.stderr.write(`${line}\n`);

  const single = options.config === undefined && wantsSingleServer(env);
  let manifest: Manifest;
  if (single) {
    const result = singleServerManifest(env, process.cwd());
    for (const e of result.errors) err(`mcp-proxy: ${e}`);
    if (!result.manifest) return 1;
    manifest = result.manifest;
  } else {
    const file = options.config ?? env.MCP_PROXY_CONFIG ?? options.defaultManifest;
    const read = await readManifestBytes(file);
    if ('unreadable' in read) {
      err(`mcp-proxy: ${read.unreadable}`);
      return 2;
    }
    const result = loadManifest({ file, bytes: read.bytes, env, baseDir: dirname(resolve(file)) });
    for (const d of result.diagnostics) err(formatDiagnostic(d));
    if (!result.manifest) return 1;
    manifest = result.manifest;
  }

  const host = options.host ?? env.HOST ?? manifest.listen.host ?? DEFAULT_HOST;
  const portText = options.port ?? env.PORT;
  const port = portText !== undefined ? Number(portText) : (manifest.listen.port ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    err(`mcp-proxy: port must be a whole number from 0 to 65535, not "${portText}"`);
    return 2;
  }

  const fleet = new Fleet({ log, env });
  const app = createApp({ fleet, log, ...(single && { aliasAtRoot: SINGLE_SERVER_NAME }) });
  const server: Server = app.listen({ host, port });
  try {
    await once(server, 'listening');
  } catch (error) {
    err(`mcp-proxy: cannot listen on ${host}:${port}: ${(error as Error).message}`);
    return 2;
  }
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  await fleet.start(manifest);
  const enabled = manifest.servers.filter((s) => !s.disabled).length;
  log.info('listening', { host, port: bound, servers: enabled });
  process.stdout.write(`mcp-proxy listening on http://${host}:${bound} (${enabled} servers)\n`);

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal means now: the exit handler still takes every child group down.
        log.warn('forced-exit', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('shutting-down', { signal });
      server.close(); // stop accepting; open streams are ended by the fleet below
      const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      grace.unref();
      fleet
        .stop()
        .then(() => server.closeAllConnections())
        .finally(() => done(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
