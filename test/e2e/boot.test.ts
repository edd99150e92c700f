import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { cliArgs } from '../support/paths.js';
import { isAlive, muteServer, stopProcess, waitFor, within } from '../support/proxy.js';
import { runCli } from '../support/run-cli.js';
import { suite } from '../support/uvu.js';

// The proxy binds its address before it starts any server (decision 0046).

const test = suite('boot');

const manifestWithMute = (pidFile: string) => `servers:\n${muteServer('mute', pidFile)}`;

test('an address already taken fails at once, exit 2, before any server has started', async () => {
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-boot-'));
  const pidFile = join(dir, 'mute.pid');
  writeFileSync(join(dir, 'mcp-proxy.yaml'), manifestWithMute(pidFile));
  try {
    const run = await runCli(['serve', '-c', join(dir, 'mcp-proxy.yaml'), '--port', String(port)]);
    assert.is(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, `mcp-proxy: cannot listen on 127.0.0.1:${port}:`);
    assert.ok(!existsSync(pidFile), 'the server was started before the address was tried');
  } finally {
    holder.close();
    if (existsSync(pidFile)) process.kill(-Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('while a server starts, every request gets 503 saying so, and SIGTERM still exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-boot-'));
  const pidFile = join(dir, 'mute.pid');
  writeFileSync(join(dir, 'mcp-proxy.yaml'), manifestWithMute(pidFile));
  const proxy = spawn(process.execPath, [...cliArgs(), 'serve', '-c', 'mcp-proxy.yaml', '--port', '0'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proxy.stderr!.on('data', (chunk) => (stderr += chunk));
  let child: number | undefined;
  try {
    await waitFor(
      () => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '',
      10_000,
      'the server to run',
    );
    child = Number(readFileSync(pidFile, 'utf8'));
    const port = Number(/"event":"starting".*?"port":(\d+)/.exec(stderr)?.[1]);
    assert.ok(port > 0, `no starting line with its port:\n${stderr}`);
    const base = `http://127.0.0.1:${port}`;
    const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(10_000) });
    assert.is(health.status, 503);
    await health.body?.cancel();
    const call = await fetch(`${base}/servers/mute/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(call.status, 503);
    assert.is(call.headers.get('retry-after'), '5');
    const body = (await call.json()) as { error: { message: string } };
    assert.match(body.error.message, 'the proxy is starting its servers');

    const exited = once(proxy, 'exit');
    proxy.kill('SIGTERM');
    assert.equal(await within(exited, 'the proxy to exit'), [0, null]);
    await waitFor(() => !isAlive(child!), 5000, 'the server to be stopped');
  } finally {
    await stopProcess(proxy);
    if (child !== undefined && isAlive(child)) process.kill(-child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
