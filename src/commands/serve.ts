import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, resolve } from 'node:path';
import { Fleet } from '../fleet/fleet.js';
import { createGateway } from '../gateway/app.js';
import { denial, writeDenial } from '../gateway/denial.js';
import { isLoopback, urlHost } from '../host-address.js';
import { createLogger, parseLevel } from '../log.js';
import { formatDiagnostic } from '../manifest/diagnostics.js';
import type { Environment } from '../manifest/interpolate.js';
import { LONGEST_DURATION_MS } from '../manifest/duration.js';
import { loadManifest } from '../manifest/load.js';
import { readManifestBytes } from '../manifest/read.js';
import { SINGLE_SERVER_NAME, singleServerManifest, wantsSingleServer } from '../manifest/single-server.js';
import type { Limits, Manifest } from '../manifest/types.js';
import { GatewaySettings } from '../gateway/settings.js';
import { Reloader } from '../fleet/reloader.js';
import { watchManifest, type ManifestWatcher } from '../fleet/watch.js';
import { InFlight } from '../gateway/in-flight.js';
import { Metrics } from '../gateway/metrics.js';
import { setMarkingTriggers } from '../marking-triggers.js';
import { ErrorCode } from '../upstream/jsonrpc.js';

export interface ServeOptions {
  /** `-c FILE`, when given: it always wins over single-server mode. */
  config?: string;
  host?: string;
  port?: string;
  /** Reload when the manifest file changes (default true; `--no-watch` turns it off; SIGHUP still reloads). */
  watch: boolean;
  env: Environment;
  /** The manifest when `-c` is not given: $MCP_PROXY_CONFIG, else ./mcp-proxy.yaml. */
  defaultManifest: string;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 8000;
/** What a request while the servers start is told to wait before trying again. */
const STARTING_RETRY_AFTER_S = 5;

/**
 * Where the servers come from: a manifest file (reloadable, with its text and its warnings, formatted), or
 * the single-server variables.
 */
type Source = { manifest: Manifest; file?: string; text?: string; warnings?: string[] };

/** `mcp-proxy serve`: loads the manifest (or the single-server variables), starts the fleet, serves. */
export async function serveCommand(options: ServeOptions): Promise<number> {
  const { env } = options;
  setMarkingTriggers();
  const log = createLogger(parseLevel(env.LOG_LEVEL));
  const err = (line: string) => process.stderr.write(`${line}\n`);

  const single = options.config === undefined && wantsSingleServer(env);
  const source = single ? fromEnvironment(env, err) : await fromFile(options, err);
  if (typeof source === 'number') return source;
  const { manifest } = source;

  const host = given(options.host) ?? given(env.HOST) ?? manifest.listen.host ?? DEFAULT_HOST;
  const portText = given(options.port) ?? given(env.PORT);
  const port = portText === undefined ? (manifest.listen.port ?? DEFAULT_PORT) : portNumber(portText);
  if (port === undefined) {
    err(`mcp-proxy: port must be a whole number from 0 to 65535, not "${portText}"`);
    return 2;
  }

  // The fleet and the settings refer to each other: sessions are bound to principals per server, and
  // request bodies are bounded by the settings' current limit.
  const settings: GatewaySettings = new GatewaySettings(
    (name, sessionId): boolean => fleet.route(name, sessionId)?.owns(sessionId) ?? false,
    isLoopback(host),
  );
  settings.apply(manifest);
  const fleet: Fleet = new Fleet({ log, env, maxBodyBytes: (): number => settings.limits.maxBodyBytes });
  const inFlight = new InFlight();
  const metrics = new Metrics(
    () => fleet.list(),
    (name) => fleet.has(name),
  );
  const gateway = createGateway({
    fleet,
    log,
    metrics,
    settings,
    inFlight,
    ...(single && { aliasAtRoot: SINGLE_SERVER_NAME }),
  });
  // Node checks header and request timeouts on this interval (30 s by default): a slow client would
  // otherwise hold its connection far beyond `headersTimeout`. Until the fleet has started, every request
  // is told that it is starting: the gateway takes over once it has.
  const server: Server = createServer({ connectionsCheckingInterval: 1000 }, answerStarting);
  applyServerTimeouts(server, settings.limits);

  let watcher: ManifestWatcher | undefined;
  let reloader: Reloader | undefined;
  if (source.file !== undefined) {
    reloader = new Reloader(source.file, fleet, env, log, manifest.listen);
    reloader.started(source.text!);
    reloader.onreport = (report) => metrics.reloaded(report.result);
    reloader.onmanifest = (next) => {
      settings.apply(next);
      applyServerTimeouts(server, next.limits);
    };
    if (options.watch) {
      // An edit while the fleet starts is applied after it: the fleet runs changes one after another.
      watcher = await watchManifest(source.file, () => void reloader!.reload(), {
        onError: (error) => log.error('watch-failed', { error: error.message, note: 'SIGHUP still reloads' }),
      });
    }
  }

  /** Stops what runs, in order: no new connections, no reloads, answers being written finish, the fleet. */
  const shutdown = async (): Promise<void> => {
    server.close();
    await watcher?.close();
    await inFlight.idle(settings.limits.shutdownGraceMs);
    await fleet.stop(); // closes sessions (and their streams), stops every child group, starting ones too
    server.closeAllConnections();
  };
  // Handled from before the first child starts: booting may wait minutes for eager servers to initialize,
  // and a signal's default action would end the proxy then and leave their process groups running.
  let stopping = false;
  const stopped = new Promise<number>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal means now: the exit handler still takes every child group down.
        log.warn('forced-exit', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('shutting-down', { signal });
      void shutdown().then(() => done(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  process.on('SIGHUP', () => {
    if (stopping) log.warn('reload-ignored', { note: 'shutting down' });
    else if (reloader) void reloader.reload(true);
    else log.warn('reload-ignored', { note: 'single-server mode has no manifest to reload' });
  });

  // Bound before any server starts (decision 0046): an address that cannot be had fails at once, not after
  // every child has started, and a probe meanwhile gets an answer rather than a refused connection.
  server.listen({ host, port });
  try {
    await once(server, 'listening');
  } catch (error) {
    err(`mcp-proxy: cannot listen on ${host}:${port}: ${(error as Error).message}`);
    await shutdown();
    return 2;
  }
  // A signal while the address was looked up: its shutdown closed a server that was not listening yet.
  if (stopping) {
    server.close();
    return stopped;
  }
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const enabled = manifest.servers.filter((s) => !s.disabled).length;
  log.info('starting', { host, port: bound, servers: enabled });
  // The container image sets HOST and PORT: a manifest's listen they override would otherwise go unnoticed.
  const overridden = overriddenListen(manifest.listen, { host, port });
  if (overridden)
    log.info('listen-overridden', { manifest: manifest.listen, serving: { host, port }, note: overridden });

  // Eager servers may take minutes to answer initialize (a first `npx -y` download): say which, now and then.
  const waiting = setInterval(() => log.info('waiting-for-servers', { servers: fleet.waitingFor() }), 10_000);
  await fleet
    .apply(manifest.servers, source.warnings)
    .catch(async (error: unknown) => {
      await shutdown(); // the watcher would keep the process from ever exiting
      throw error;
    })
    .finally(() => clearInterval(waiting));
  if (stopping) return stopped;
  server.off('request', answerStarting);
  server.on('request', gateway);
  const open = openAccess(host, manifest.auth !== undefined, single);
  if (open) {
    log.warn('no-access-control', { host, warning: open.warning });
    err(`mcp-proxy: WARNING: ${open.warning}. ${open.remedy}.`);
  }
  // An edit between reading the manifest and watching it would otherwise go unseen; unchanged text makes
  // this a no-op.
  if (watcher) void reloader!.reload();

  log.info('listening', { host, port: bound, servers: enabled, watching: watcher !== undefined });
  process.stdout.write(`mcp-proxy listening on http://${urlHost(host)}:${bound} (${enabled} servers)\n`);
  return stopped;
}

/**
 * The answer to every request while the fleet starts: 503 with a JSON-RPC error, which an MCP client reports
 * as it is, and a probe reads as not started yet.
 */
function answerStarting(_req: IncomingMessage, res: ServerResponse): void {
  writeDenial(
    res,
    denial(503, ErrorCode.UpstreamUnavailable, 'the proxy is starting its servers; try again shortly', {
      'Retry-After': String(STARTING_RETRY_AFTER_S),
    }),
  );
}

/**
 * What to say of a proxy with no access control listening beyond loopback, if it is one: whoever reaches
 * the port can act with the pod's identity and run the manifest's commands.
 */
export function openAccess(
  host: string,
  hasAuth: boolean,
  single: boolean,
): { warning: string; remedy: string } | undefined {
  if (hasAuth || isLoopback(host)) return undefined;
  return {
    warning: `no access control (auth:) and listening on ${host}: anyone who can reach this port can use every server`,
    // Single-server mode has no manifest to declare auth: in; a manifest of one adapter has.
    remedy: single
      ? 'Serve it on 127.0.0.1 or behind a gateway that authenticates, or serve a manifest with adapters: and auth:'
      : 'Declare auth: in the manifest, or put access control in front of the proxy',
  };
}

/** What a manifest's `listen` names that the flags or HOST and PORT replaced, in words; undefined if nothing. */
export function overriddenListen(
  listen: { host?: string; port?: number },
  serving: { host: string; port: number },
): string | undefined {
  const replaced = [
    listen.host !== undefined && listen.host !== serving.host && 'host',
    listen.port !== undefined && listen.port !== serving.port && 'port',
  ].filter(Boolean);
  if (replaced.length === 0) return undefined;
  return `the manifest's listen ${replaced.join(' and ')} ${replaced.length > 1 ? 'are' : 'is'} replaced by --host/--port or HOST/PORT, which win`;
}

/** A setting given empty (`PORT=` in a container's environment) is not given: '' would bind every interface. */
function given(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

/** The port `text` names in decimal digits, if it is one: Number() would also take ' 80', '0x50' and '8e1'. */
function portNumber(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** Bounds against slow clients (slowloris): headers, and the whole request, must arrive in time. */
function applyServerTimeouts(server: Server, limits: Limits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  // Node arms the idle socket's timer a second past keepAliveTimeout: at the longest duration that overflows
  // the timer, which Node then warns of and fires at once.
  server.keepAliveTimeout = Math.min(limits.keepAliveTimeoutMs, LONGEST_DURATION_MS - 1000);
}

function fromEnvironment(env: Environment, err: (line: string) => void): Source | number {
  const result = singleServerManifest(env, process.cwd());
  for (const e of result.errors) err(`mcp-proxy: ${e}`);
  return result.manifest ? { manifest: result.manifest } : 1;
}

async function fromFile(options: ServeOptions, err: (line: string) => void): Promise<Source | number> {
  const file = options.config ?? options.defaultManifest;
  const read = await readManifestBytes(file);
  if ('unreadable' in read) {
    err(`mcp-proxy: ${read.unreadable}`);
    return 2;
  }
  const result = loadManifest({ file, bytes: read.bytes, env: options.env, baseDir: dirname(resolve(file)) });
  const diagnostics = result.diagnostics.map(formatDiagnostic);
  // Errors end the proxy, told as plain lines; warnings of a manifest it serves are log events (the fleet
  // logs them as it applies it), as a reload's are.
  if (!result.manifest) {
    for (const line of diagnostics) err(line);
    return 1;
  }
  return { manifest: result.manifest, file, text: read.bytes.toString('utf8'), warnings: diagnostics };
}
