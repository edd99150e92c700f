import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { cliArgs, fromRoot } from './paths.js';
import { deadline } from '../../src/deadline.js';
import type { ReloadReport, ServerListing } from '../../src/fleet/fleet.js';

export interface RunningProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  process: ChildProcess;
  dir: string;
  manifestPath: string;
  /** Everything the proxy wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, wait for exit (bounded), then remove the temp dir. */
  stop(): Promise<number | null>;
}

/** Node running a compiled fixture server, as a manifest `command` + `args`. */
export const fixtureCommand = (name: string) => ({
  command: process.execPath,
  args: [fromRoot('dist', 'test', 'fixtures', 'servers', `${name}.js`)],
});

/** Never answers initialize, as `npx -y` fetching a package for minutes; writes its pid to the file it is given. */
const MUTE = "require('fs').writeFileSync(process.argv[1], String(process.pid)); setInterval(() => {}, 1e9)";

/** A manifest entry (under `servers:`) for a server that never answers initialize, its pid in `pidFile`. */
export const muteServer = (name: string, pidFile: string): string =>
  `  ${name}:\n    command: ${JSON.stringify(process.execPath)}\n    args: ${JSON.stringify(['-e', MUTE, pidFile])}\n`;

/** A fixture serving Streamable HTTP on 127.0.0.1 in a process of its own: an upstream for remote servers. */
export interface HttpFixture {
  url: string;
  child: ChildProcess;
  stop(): Promise<number | null>;
}

/**
 * Starts the conformance fixture over HTTP on a free port; resolves once it says where it listens. A
 * fixture that exits first, or says nothing in 10 s, is stopped and the promise rejects.
 */
export async function startHttpFixture(): Promise<HttpFixture> {
  const fixture = fixtureCommand('conformance');
  const child = spawn(fixture.command, [...fixture.args, 'http', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = new Promise<string>((resolve, reject) => {
    // Accumulated, and read only once the line is whole: it may come split across chunks.
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const match = /listening (\d+)\n/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) =>
      reject(new Error(`the conformance fixture exited with ${code} before listening`)),
    );
  });
  try {
    return {
      url: `http://127.0.0.1:${await within(port, 'the conformance fixture to listen')}/mcp`,
      child,
      stop: () => stopProcess(child),
    };
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
}

/**
 * Starts the real proxy (the built CLI) as a child process on a free port, with a manifest written to a
 * temp dir (or none: `undefined` starts it without -c, for single-server mode, in that temp dir; or the
 * file at `options.config`, laid out by the caller).
 * Resolves once it prints its listening line.
 */
export async function startProxy(
  manifest: string | undefined,
  options: { env?: Record<string, string>; args?: string[]; config?: string } = {},
): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-e2e-'));
  const manifestPath = options.config ?? join(dir, 'mcp-proxy.yaml');
  if (manifest !== undefined && options.config === undefined) writeFileSync(manifestPath, manifest);
  const config = manifest === undefined && options.config === undefined ? [] : ['-c', manifestPath];
  const child = spawn(
    process.execPath,
    [...cliArgs(), 'serve', ...config, '--port', '0', ...(options.args ?? [])],
    {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let url: string;
  try {
    url = await listeningUrl(child, () => stderr);
  } catch (error) {
    // Not started in time, or exited: a caller with no proxy object cannot stop it or remove its dir.
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    process: child,
    dir,
    manifestPath,
    stderr: () => stderr,
    async stop() {
      const code = await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** The proxy's base URL from its `listening on` line; rejects if it exits first or takes over 20 s. */
export function listeningUrl(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`proxy did not start in 20 s:\n${stderr()}`)), 20_000);
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited with ${code} before listening:\n${stderr()}`));
    });
  });
}

/**
 * SIGTERM, then SIGKILL after 10 s; resolves with the exit code. A SIGKILL also kills the process group of
 * each child the process had: the proxy runs its children in groups of their own and stops them from an
 * exit hook, which SIGKILL skips, so they would outlive the test run.
 */
export function stopProcess(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    let orphans: number[] = [];
    const kill = setTimeout(() => {
      // Read just before: the children it stopped by itself are gone, and a pid has had little time to be reused.
      orphans = childrenOf(child.pid!);
      child.kill('SIGKILL');
    }, 10_000);
    child.once('exit', (code) => {
      clearTimeout(kill);
      for (const pid of orphans) killGroup(pid);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

/** The pids whose parent is `pid`, from /proc/<pid>/stat (Linux; this kernel has no task/<tid>/children). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited since the listing
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so the fields are read after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** SIGKILL to the process group `pid` leads; one already gone is no error. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** An SDK client connected to one server of the proxy. */
export async function connect(
  baseUrl: string,
  server: string,
  setup?: (client: Client) => void,
  capabilities: Record<string, object> = {},
  headers: Record<string, string> = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'e2e', version: '1.0.0' }, { capabilities });
  setup?.(client);
  const transport = new StreamableHTTPClientTransport(new URL(`/servers/${server}/mcp`, baseUrl), {
    requestInit: { headers },
  });
  await client.connect(transport);
  return { client, transport };
}

/** What GET /servers answers a caller who may see every server. */
export interface ServersBody {
  auth: string;
  servers: ServerListing[];
  reload: ReloadReport | null;
  applying: { since: string; waitingFor: string[] } | null;
}

/** GET /servers of the proxy at `baseUrl`, parsed. */
export async function serversOf(baseUrl: string): Promise<ServersBody> {
  const response = await fetch(`${baseUrl}/servers`, { signal: AbortSignal.timeout(5_000) });
  return (await response.json()) as ServersBody;
}

/** The /servers entry of the server `name`. */
export async function listingOf(baseUrl: string, name: string): Promise<ServerListing> {
  const listing = (await serversOf(baseUrl)).servers.find((s) => s.name === name);
  if (!listing) throw new Error(`/servers lists no server named ${name}`);
  return listing;
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `promise`, or a rejection naming `what` once `ms` pass first (uvu has no per-test timeout). */
export function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  return deadline(promise, ms, `timed out after ${ms} ms waiting for ${what}`);
}

/** Polls `condition` every 50 ms until it holds or `ms` pass. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    // Each call gets only the time left: a condition that hangs (an SDK connect, a fetch) must not hold
    // the wait past its bound.
    if (await within(Promise.resolve().then(condition), what, deadline - Date.now())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * POSTs a raw body on an open session, with the headers a well-behaved client sends (tests override them).
 * `signal` bounds the request and the reading of its body (10 s unless the caller gives its own).
 */
export function postToSession(
  target: { endpoint: string; session: string },
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  signal: AbortSignal = AbortSignal.timeout(10_000),
): Promise<Response> {
  return fetch(target.endpoint, {
    method: 'POST',
    signal,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': target.session,
      'mcp-protocol-version': '2025-11-25',
      ...headers,
    },
    body,
  });
}

/**
 * POSTs a raw `initialize` with no session yet, as a client opening one does (tests add headers). It asks
 * for 2025-11-25 and declares no capabilities unless told; `signal` bounds the request and the reading of
 * its body (10 s unless the caller gives its own).
 */
export function postInitialize(
  endpoint: string,
  headers: Record<string, string> = {},
  {
    protocolVersion = '2025-11-25',
    capabilities = {},
    signal = AbortSignal.timeout(10_000),
  }: { protocolVersion?: string; capabilities?: object; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(endpoint, {
    method: 'POST',
    signal,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion, capabilities, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
}
