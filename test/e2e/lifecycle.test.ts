import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { cliArgs } from '../support/paths.js';
import {
  fixtureCommand,
  isAlive,
  muteServer as mute,
  startProxy,
  waitFor,
  within,
} from '../support/proxy.js';
import { runCli } from '../support/run-cli.js';

// The proxy's own life: signals at boot, during a reload and during shutdown; where it listens.

const echo = fixtureCommand('echo');
const server = (name: string) =>
  `  ${name}:\n    command: ${JSON.stringify(echo.command)}\n    args: ${JSON.stringify(echo.args)}\n`;
const manifestOf = (...servers: string[]) => `servers:\n${servers.join('')}`;

type Exit = { code: number | null; signal: NodeJS.Signals | null };
const exitOf = (child: ChildProcess): Promise<Exit> =>
  new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

/** The pid a mute server wrote, once it runs. */
async function mutePid(pidFile: string): Promise<number> {
  const written = () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0);
  await waitFor(() => written() > 0, 10_000, 'the mute server to run');
  return written();
}

/** A child the proxy under test may have left behind: SIGKILLed with its process group (it leads one). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined || !isAlive(pid)) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone meanwhile.
  }
}

const test = suite('lifecycle');

test('SIGTERM while an eager server is still initializing at boot stops its child and exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-lifecycle-'));
  const pidFile = join(dir, 'mute.pid');
  writeFileSync(join(dir, 'mcp-proxy.yaml'), manifestOf(mute('mute', pidFile)));
  const proxy = spawn(process.execPath, [...cliArgs(), 'serve', '-c', 'mcp-proxy.yaml', '--port', '0'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = exitOf(proxy);
  let stdout = '';
  proxy.stdout!.on('data', (chunk) => (stdout += chunk));
  let child: number | undefined;
  try {
    child = await mutePid(pidFile);
    assert.not.match(stdout, 'listening', 'still booting: the mute server holds it');
    proxy.kill('SIGTERM');
    assert.equal(await within(exited, 'the proxy to exit'), { code: 0, signal: null });
    await waitFor(() => !isAlive(child!), 5000, 'the mute child to be stopped');
  } finally {
    if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
    killGroup(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

// Well under the 120 s a server gets to answer initialize: shutdown does not wait for it.
test('SIGTERM while a reload is starting a server stops that server too, and exits 0', async () => {
  const proxy = await startProxy(manifestOf(server('steady')));
  const exited = exitOf(proxy.process);
  const pidFile = join(proxy.dir, 'mute.pid');
  let child: number | undefined;
  try {
    writeFileSync(proxy.manifestPath, manifestOf(server('steady'), mute('mute', pidFile)));
    child = await mutePid(pidFile);
    proxy.process.kill('SIGTERM');
    assert.equal(await within(exited, 'the proxy to exit', 20_000), { code: 0, signal: null });
    await waitFor(() => !isAlive(child!), 5000, 'the mute child to be stopped');
  } finally {
    await proxy.stop();
    killGroup(child);
  }
});

test('SIGHUP during shutdown is logged and ignored: shutdown still finishes', async () => {
  const proxy = await startProxy(manifestOf(server('svc')));
  const exited = exitOf(proxy.process);
  // A request whose body never comes holds shutdown (it lets requests finish) until it is cut off.
  const held = request(`${proxy.url}/servers/svc/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': '100',
      // Answered as the proxy takes the request up: from then on it counts as being answered.
      expect: '100-continue',
    },
  });
  held.on('error', () => {}); // cut off below
  // Node sends headers with Expect as soon as it connects.
  const taken = once(held, 'continue');
  try {
    await within(taken, 'the proxy to take the request up');
    proxy.process.kill('SIGTERM');
    await waitFor(() => proxy.stderr().includes('"shutting-down"'), 10_000, 'shutdown to begin');
    proxy.process.kill('SIGHUP');
    await waitFor(
      () => /"reload-ignored".*"shutting down"/.test(proxy.stderr()),
      10_000,
      'the SIGHUP to be logged',
    );
    held.destroy();
    assert.equal(await within(exited, 'the proxy to exit'), { code: 0, signal: null });
  } finally {
    held.destroy();
    await proxy.stop();
  }
});

test('an empty HOST or PORT (or --host=, --port=) is not set: the manifest listen applies', async () => {
  // The manifest's port is held here, so the address the proxy tries shows in its refusal.
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-lifecycle-'));
  const manifest = join(dir, 'mcp-proxy.yaml');
  writeFileSync(manifest, `listen:\n  host: 127.0.0.1\n  port: ${port}\nservers: {}\n`);
  try {
    const runs = await Promise.all([
      runCli(['serve', '-c', manifest], { env: { HOST: '', PORT: '' } }),
      runCli(['serve', '-c', manifest, '--host=', '--port='], {}),
    ]);
    for (const run of runs) {
      assert.is(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, `mcp-proxy: cannot listen on 127.0.0.1:${port}:`);
    }
  } finally {
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a port that is not decimal digits is refused, exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-lifecycle-'));
  const manifest = join(dir, 'mcp-proxy.yaml');
  writeFileSync(manifest, `listen:\n  host: 127.0.0.1\nservers: {}\n`);
  try {
    // Each is 0 to Number(): a random port, had it been taken.
    const texts = [' 0', '0x0', '0e0', '+0'];
    const runs = await Promise.all(texts.map((PORT) => runCli(['serve', '-c', manifest], { env: { PORT } })));
    runs.forEach((run, i) => {
      assert.is(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, `mcp-proxy: port must be a whole number from 0 to 65535, not "${texts[i]}"`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
