/** How each target is started, reached and stopped. */
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientSpec } from './clients.js';
import {
  cliNodeFlags,
  cliPath,
  echoFixture,
  httpFloor,
  loopbackPreload,
  mcpProxyBin,
  nativeServer,
  node,
  supergatewayBin,
  tcpRelay,
} from './paths.js';
import { freePort, listeningAddresses, start, stop, waitForOutput, type Started } from './procs.js';
import { get } from './raw.js';

export type Phase = 'open' | 'seq' | 'payload' | 'conc';

export interface Target {
  id: string;
  label: string;
  client: ClientSpec;
  /** The process whose tree is measured (absent for direct stdio: the fixtures are the bench's own children). */
  main?: Started;
  /** Measured with the tree too: the remote passthrough's upstream. */
  alsoMeasured: Started[];
  /** Stopped with the target, in this order after `main`. */
  helpers: Started[];
  phases: ReadonlySet<Phase>;
  /** Concurrency levels run for this target (a subset of the configured ones). */
  levels?: readonly number[];
  /** A process per request: keep counts small. */
  slow: boolean;
  note?: string;
  cleanup?: () => void;
  listening: string[];
}

const ALL: ReadonlySet<Phase> = new Set(['open', 'seq', 'payload', 'conc']);
const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' });

export const fixtureServer = () => ({ command: node, args: [echoFixture] });

export function directTarget(): Target {
  return {
    id: 'direct',
    label: 'direct stdio',
    client: { kind: 'stdio', ...fixtureServer() },
    alsoMeasured: [],
    helpers: [],
    phases: ALL,
    slow: false,
    note: 'SDK client + StdioClientTransport; a fixture child per client',
    listening: [],
  };
}

export async function startNative(): Promise<{ started: Started; url: string }> {
  const started = start(node, [nativeServer], { env: baseEnv() });
  const match = await waitForOutput(started, /native listening (\d+)/, 20_000);
  return { started, url: `http://127.0.0.1:${match[1]}/mcp` };
}

/** The native server, started once: the remote passthrough and the TCP relay may be calling it too. */
export function nativeTarget({ started, url }: { started: Started; url: string }): Target {
  return {
    id: 'native',
    label: 'native SDK HTTP',
    client: { kind: 'http', url },
    main: started,
    alsoMeasured: [],
    helpers: [],
    phases: ALL,
    slow: false,
    note: 'the fixture tools in an SDK StreamableHTTPServerTransport, no proxy',
    listening: listeningAddresses(started.pid),
  };
}

/** A yardstick in front of the native server, measured for sequential latency only, beside the passthrough. */
async function yardstick(
  id: string,
  label: string,
  script: string,
  upstreamUrl: string,
  ready: RegExp,
  note: string,
): Promise<Target> {
  const upstream = new URL(upstreamUrl);
  const started = start(node, [script, upstreamUrl], { env: baseEnv() });
  const match = await waitForOutput(started, ready, 20_000);
  return {
    id,
    label,
    client: { kind: 'http', url: `http://127.0.0.1:${match[1]}${upstream.pathname}` },
    main: started,
    alsoMeasured: [],
    helpers: [],
    phases: new Set(['seq']),
    slow: false,
    note,
    listening: listeningAddresses(started.pid),
  };
}

/** A raw TCP relay in front of a native server (`bench/src/tcp-relay.ts`): the floor of any extra hop. */
export const tcpRelayTarget = ({ url }: { url: string }): Promise<Target> =>
  yardstick(
    'tcp-relay',
    'raw TCP relay → native',
    tcpRelay,
    url,
    /tcp relay listening (\d+)/,
    'bytes piped to the native target’s own server, no HTTP: the floor of any extra hop',
  );

/**
 * The least passthrough on Node's HTTP server in front of a native server (`bench/src/http-floor.ts`): the
 * floor of any proxy built on `node:http`.
 */
export const httpFloorTarget = ({ url }: { url: string }): Promise<Target> =>
  yardstick(
    'http-floor',
    'node:http floor → native',
    httpFloor,
    url,
    /http floor listening (\d+)/,
    'node:http server, raw keep-alive upstream socket, no checks: the floor of a passthrough on node:http',
  );

export interface ProxyProcess {
  started: Started;
  base: string;
  dir: string;
  manifestPath: string;
}

/** The real CLI, `serve -c <manifest> --port 0`, read from its `listening on` line; ready once /readyz says so. */
export async function startProxy(
  manifest: unknown,
  options: {
    logLevel?: string;
    nodeArgs?: string[];
    watch?: boolean;
    wrapper?: string[];
    env?: Record<string, string>;
  } = {},
): Promise<ProxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-bench-'));
  const manifestPath = join(dir, 'mcp-proxy.yaml');
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const wrapper = options.wrapper ?? [];
  const started = start(
    wrapper[0] ?? node,
    [
      ...wrapper.slice(1),
      ...(wrapper.length > 0 ? [node] : []),
      ...cliNodeFlags(),
      ...(options.nodeArgs ?? []),
      cliPath,
      'serve',
      '-c',
      manifestPath,
      '--port',
      '0',
      ...(options.watch === false ? ['--no-watch'] : []),
    ],
    {
      cwd: dir,
      env: {
        ...baseEnv(),
        ...(options.logLevel !== undefined && { LOG_LEVEL: options.logLevel }),
        ...options.env,
      },
    },
  );
  try {
    const match = await waitForOutput(started, /listening on (http:\/\/\S+)/, 30_000);
    const base = match[1]!;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await get(`${base}/readyz`).catch(() => undefined);
      if (ready?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`not ready within 60 s: ${ready?.body}`);
      await sleep(20);
    }
    return { started, base, dir, manifestPath };
  } catch (error) {
    await stop(started);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export const echoServer = (extra: Record<string, unknown> = {}) => ({ ...fixtureServer(), ...extra });

export async function proxyTarget(
  id: string,
  label: string,
  server: Record<string, unknown>,
  options: { logLevel: string; phases?: ReadonlySet<Phase>; levels?: readonly number[]; note?: string },
  helpers: Started[] = [],
): Promise<Target> {
  const proxy = await startProxy({ servers: { echo: server } }, { logLevel: options.logLevel });
  return {
    id,
    label,
    client: { kind: 'http', url: `${proxy.base}/servers/echo/mcp` },
    main: proxy.started,
    alsoMeasured: helpers,
    helpers,
    phases: options.phases ?? ALL,
    ...(options.levels && { levels: options.levels }),
    slow: false,
    ...(options.note !== undefined && { note: options.note }),
    cleanup: () => rmSync(proxy.dir, { recursive: true, force: true }),
    listening: listeningAddresses(proxy.started.pid),
  };
}

/** Polls until something accepts on 127.0.0.1:port (peers print nothing useful at logLevel none). */
async function waitForPort(started: Started, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (started.proc.exitCode !== null) throw new Error(`exited:\n${started.output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(25);
  }
  throw new Error(`nothing listening on ${port} within ${ms} ms:\n${started.output()}`);
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function supergatewayTarget(stateful: boolean): Promise<Target> {
  const port = await freePort();
  const started = start(
    node,
    [
      '--import',
      loopbackPreload,
      supergatewayBin,
      '--stdio',
      `${shellQuote(node)} ${shellQuote(echoFixture)}`,
      '--outputTransport',
      'streamableHttp',
      '--port',
      String(port),
      '--logLevel',
      'none',
      ...(stateful ? ['--stateful'] : []),
    ],
    { env: baseEnv() },
  );
  await waitForPort(started, port, 30_000);
  return {
    id: stateful ? 'sg-stateful' : 'sg-stateless',
    label: stateful ? 'supergateway --stateful' : 'supergateway (stateless)',
    client: { kind: 'http', url: `http://127.0.0.1:${port}/mcp` },
    main: started,
    alsoMeasured: [],
    helpers: [],
    phases: ALL,
    slow: !stateful,
    note: stateful ? 'a child per session, through a shell' : 'a child per request, through a shell',
    listening: listeningAddresses(started.pid),
  };
}

export async function mcpProxyTarget(): Promise<Target> {
  const port = await freePort();
  const started = start(
    node,
    [
      '--import',
      loopbackPreload,
      mcpProxyBin,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--server',
      'stream',
      '--',
      node,
      echoFixture,
    ],
    { env: baseEnv() },
  );
  await waitForPort(started, port, 30_000);
  return {
    id: 'mcp-proxy',
    label: 'mcp-proxy (npm)',
    client: { kind: 'http', url: `http://127.0.0.1:${port}/mcp` },
    main: started,
    alsoMeasured: [],
    helpers: [],
    phases: ALL,
    slow: false,
    note: 'one shared child',
    listening: listeningAddresses(started.pid),
  };
}

/** Stops the target's processes; returns the command lines of any descendant that outlived them. */
export async function stopTarget(target: Target): Promise<string[]> {
  const survivors: string[] = [];
  if (target.main) survivors.push(...(await stop(target.main)));
  for (const helper of target.helpers) survivors.push(...(await stop(helper)));
  target.cleanup?.();
  return survivors;
}
