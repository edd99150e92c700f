import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import {
  liveChildPids,
  spawnStdioChild,
  type ChildExit,
  type StdioChild,
  type StdioChildOptions,
} from '../../src/upstream/child.js';
import { childEnvironment } from '../../src/upstream/environment.js';
import { fromRoot, repoRoot } from '../support/paths.js';
import { within } from '../support/proxy.js';

const fixture = (name: string) => fromRoot('dist', 'test', 'fixtures', 'servers', `${name}.js`);
const MiB = 1024 * 1024;

const started: StdioChild[] = [];
test.after.each(async () => {
  await within(Promise.all(started.splice(0).map((child) => child.stop())), 'children to stop', 10_000);
});

/** Runs a fixture through the module, recording everything it reports. */
function start(name: string, args: string[] = [], options: Partial<StdioChildOptions> = {}) {
  const stderr: string[] = [];
  const skipped: string[] = [];
  const messages: JSONRPCMessage[] = [];
  const events: string[] = [];
  const exits: ChildExit[] = [];
  const stuck: number[] = [];
  const child = spawnStdioChild(
    {
      name,
      command: process.execPath,
      args: [fixture(name), ...args],
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '' },
      ...options,
    },
    {
      stderr: (_server, line) => stderr.push(line),
      skipped: (_server, line) => skipped.push(line),
      stdinStuck: (_server, queued) => stuck.push(queued),
    },
  );
  started.push(child);
  child.onmessage = (message) => {
    messages.push(message);
    events.push('method' in message ? message.method : 'response');
  };
  child.onexit = (exit) => {
    exits.push(exit);
    events.push('exit');
  };
  return { child, stderr, skipped, messages, events, exits, stuck };
}

type Started = ReturnType<typeof start>;
let nextId = 1;

/** Sends a request and waits for the response to it (not for its echo). */
async function request(h: Started, method: string, params: Record<string, unknown> = {}, ms = 5000) {
  const id = nextId++;
  h.child.send({ jsonrpc: '2.0', id, method, params });
  const response = await waitFor(
    () => h.messages.find((m) => 'id' in m && m.id === id && !('method' in m)),
    ms,
    `the response to ${method}`,
  );
  if (!('result' in response)) throw new Error(`${method} failed: ${JSON.stringify(response)}`);
  return response.result as Record<string, unknown>;
}

async function waitFor<T>(probe: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Alive and not a zombie: a killed process whose parent is gone may wait a while to be reaped. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

const allGone = (pids: number[], what: string) =>
  waitFor(() => pids.every((pid) => !isAlive(pid)), 5000, what);

async function stubbornPids(h: Started): Promise<{ pid: number; grandchild: number }> {
  const report = await waitFor(
    () => h.messages.find((m) => 'method' in m && m.method === 'pids'),
    5000,
    'the stubborn fixture to report its pids',
  );
  return (report as unknown as { params: { pid: number; grandchild: number } }).params;
}

test('JSON-RPC lines go both ways; other stdout lines are logged as skipped; stderr is kept', async () => {
  const h = start('echo-lines');
  const request: JSONRPCMessage = { jsonrpc: '2.0', id: 'a', method: 'tools/list', params: {} };
  const notification: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/initialized' };
  const failure: JSONRPCMessage = {
    jsonrpc: '2.0',
    id: 7,
    error: { code: -32601, message: 'no such method' },
  };
  for (const message of [request, notification, failure]) h.child.send(message);
  await waitFor(() => h.messages.length === 3, 5000, 'three echoed messages');
  assert.equal(h.messages, [request, notification, failure]);
  assert.equal(h.skipped, ['this is not JSON', '{"json":"but not JSON-RPC"}']);
  await waitFor(() => h.stderr.length > 0, 5000, 'a stderr line');
  assert.equal(h.stderr, ['echo-lines: ready']);
  assert.equal(h.child.stderrTail(), ['echo-lines: ready']);
});

test('lines that are JSON but not JSON-RPC messages are skipped', async () => {
  const h = start('echo-lines');
  const lines = [
    '[{"jsonrpc":"2.0","method":"batch"}]',
    '{"jsonrpc":"1.0","method":"old"}',
    '{"jsonrpc":"2.0","id":null,"result":{}}',
    '{"jsonrpc":"2.0","id":1.5,"method":"fractional id"}',
    '{"jsonrpc":"2.0","id":1,"result":"not an object"}',
    '{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}',
    '{"jsonrpc":"2.0","method":"m","params":[1,2]}',
    '{"jsonrpc":"2.0","id":1}',
  ];
  // The fixture echoes whatever it reads, so raw lines reach the proxy's stdout parser unchanged.
  for (const line of lines) h.child.send(JSON.parse(line) as JSONRPCMessage);
  h.child.send({ jsonrpc: '2.0', method: 'notifications/done' });
  await waitFor(() => h.messages.length === 1, 5000, 'the closing notification');
  assert.equal(h.skipped.slice(2), lines);
});

test('a message written in pieces and ended by \\r\\n arrives whole', async () => {
  const h = start('echo-lines');
  assert.equal(await request(h, 'pieces'), { whole: true });
  assert.equal(h.skipped.length, 2);
});

test('messages sent in one tick arrive whole, in order, each on its own line, a 1 MiB one among them', async () => {
  const h = start('echo-lines');
  const data = 'é'.repeat(MiB / 2) + 'x'.repeat(MiB / 4);
  const sent: JSONRPCMessage[] = [];
  for (let i = 0; i < 40; i++) {
    sent.push({ jsonrpc: '2.0', method: 'notifications/small', params: { i } });
    if (i === 20) sent.push({ jsonrpc: '2.0', method: 'notifications/big', params: { data } });
  }
  for (const message of sent) h.child.send(message);
  // The fixture echoes line by line: two messages on one line would come back as one skipped line.
  await waitFor(() => h.messages.length === sent.length, 10_000, 'every message back');
  assert.equal(h.messages, sent);
  assert.is(h.skipped.length, 2, 'only the two lines the fixture starts with');
});

test('the messages of one turn of the event loop leave in one write', async () => {
  const h = start('echo-lines');
  await request(h, 'env');
  // The writes that carry these messages, counted where a socket hands them to the OS: not the process's
  // write syscalls (/proc/self/io), which count whatever else the test process writes meanwhile.
  const written = await socketWritesWith('notifications/one-turn', async () => {
    await new Promise<void>((resolve) => {
      // Ten callbacks of one turn, like requests that arrive together, each in an I/O callback of its own.
      for (let c = 0; c < 10; c++) {
        setImmediate(() => {
          for (let i = 0; i < 10; i++)
            h.child.send({ jsonrpc: '2.0', method: 'notifications/one-turn', params: { i } });
        });
      }
      // The next turn, after the write.
      setImmediate(() => setImmediate(resolve));
    });
  });
  assert.is(written, 1, `${written} writes for 100 messages`);
  await waitFor(() => h.messages.length === 101, 5000, 'the messages back');
});

type WriteOne = (chunk: Buffer | string, encoding: BufferEncoding, callback: () => void) => void;
type WriteMany = (chunks: { chunk: Buffer | string }[], callback: () => void) => void;

/** Runs `during`, counting the socket writes (one each to the OS) whose bytes include `marker`. */
async function socketWritesWith(marker: string, during: () => Promise<void>): Promise<number> {
  const socket = Socket.prototype as unknown as { _write: WriteOne; _writev: WriteMany };
  const { _write, _writev } = socket;
  let count = 0;
  socket._write = function (this: Socket, chunk, encoding, callback) {
    if (String(chunk).includes(marker)) count++;
    _write.call(this, chunk, encoding, callback);
  };
  socket._writev = function (this: Socket, chunks, callback) {
    if (chunks.some(({ chunk }) => String(chunk).includes(marker))) count++;
    _writev.call(this, chunks, callback);
  };
  try {
    await during();
  } finally {
    Object.assign(socket, { _write, _writev });
  }
  return count;
}

test('a stdout line past 64 MiB is dropped with a note, and the next message still arrives', async () => {
  const h = start('echo-lines');
  await request(h, 'flood', { bytes: 64 * MiB + 1 }, 30_000);
  assert.equal(h.skipped.slice(2), ['[a stdout line longer than 67108864 bytes was dropped]']);
  assert.equal(await request(h, 'env', {}), { env: { PATH: process.env.PATH ?? '' } });
});

test('an answer past 64 MiB fails its request at once, with why, whichever end its id is at', async () => {
  const h = start('echo-lines');
  for (const idLast of [false, true]) {
    const id = `big-${idLast}`;
    h.child.send({ jsonrpc: '2.0', id, method: 'big-answer', params: { bytes: 64 * MiB, idLast } });
    const answer = await waitFor(
      () => h.messages.find((m) => 'id' in m && m.id === id),
      30_000,
      `the answer to ${id}`,
    );
    assert.equal(answer, {
      jsonrpc: '2.0',
      id,
      error: {
        code: -32603,
        message: "the server's answer was longer than 67108864 bytes, the most taken from a stdio server",
      },
    });
  }
});

test('the stderr tail keeps the last 200 lines, oldest first', async () => {
  const h = start('echo-lines');
  await request(h, 'stderr', { count: 250 });
  await within(h.child.stop(), 'stop', 5000);
  const tail = h.child.stderrTail();
  assert.is(tail.length, 200);
  assert.is(tail[0], 'stderr line 50');
  assert.is(tail[199], 'stderr line 249');
  assert.is(h.stderr.length, 251, 'every line is logged');
});

test('onexit comes once, after the last message, with the exit code', async () => {
  const h = start('echo-lines');
  h.child.send({ jsonrpc: '2.0', id: 'bye', method: 'exit', params: { code: 7 } });
  await waitFor(() => h.exits.length === 1, 5000, 'the exit');
  assert.equal(h.exits, [{ code: 7, signal: null }]);
  assert.equal(h.events.slice(-2), ['notifications/goodbye', 'exit']);
  assert.not.ok(liveChildPids().includes(h.child.pid!));
  h.child.send({ jsonrpc: '2.0', method: 'notifications/too-late' });
  await within(h.child.stop(), 'stop after exit', 1000);
  assert.is(h.exits.length, 1);
});

test('stop sends TERM to the group, then KILL after the grace, reaching a grandchild that ignores TERM', async () => {
  const h = start('stubborn', [], { stopGraceMs: 300 });
  const { pid, grandchild } = await stubbornPids(h);
  assert.is(pid, h.child.pid);
  assert.ok(isAlive(grandchild));
  const began = Date.now();
  const stops = [h.child.stop(), h.child.stop()];
  await within(Promise.all(stops), 'stop', 5000);
  assert.ok(Date.now() - began >= 290, 'the grace period was given');
  assert.equal(h.exits, [{ code: null, signal: 'SIGKILL' }]);
  await allGone([pid, grandchild], 'the group to be gone');
  assert.not.ok(liveChildPids().includes(pid));
  await within(h.child.stop(), 'a third stop', 1000);
  assert.is(h.exits.length, 1);
});

test('a child that honours TERM stops without waiting for the grace', async () => {
  // A grace twice the bound on the stop: a stop that waited it out would fail the bound.
  const h = start('echo-lines', [], { stopGraceMs: 10_000 });
  await request(h, 'env');
  await within(h.child.stop(), 'stop, well within the grace', 5000);
  assert.equal(h.exits, [{ code: null, signal: 'SIGTERM' }]);
});

test('a child that exits on its own takes the rest of its group with it', async () => {
  const h = start('stubborn', ['crash'], { stopGraceMs: 300 });
  const { pid, grandchild } = await stubbornPids(h);
  await waitFor(() => h.exits.length === 1, 5000, 'the exit');
  assert.equal(h.exits, [{ code: 3, signal: null }]);
  await allGone([pid, grandchild], 'the grandchild to be gone');
});

test('onexit still comes when a process outside the group holds stdout open', async () => {
  const h = start('stubborn', ['escape'], { stopGraceMs: 200 });
  const { pid, grandchild } = await stubbornPids(h);
  try {
    // The configured grace and the slack for stdout to close (0.7 s), not the default's (3.5 s), nor never.
    await waitFor(() => h.exits.length === 1, 2000, 'the exit, within the grace and a little more');
    assert.equal(h.exits, [{ code: 3, signal: null }]);
    assert.not.ok(isAlive(pid));
  } finally {
    if (isAlive(grandchild)) process.kill(grandchild, 'SIGKILL');
  }
});

test('writing to a child that stopped reading does not crash the proxy', async () => {
  const h = start('echo-lines');
  await request(h, 'close-stdin');
  const big = { jsonrpc: '2.0' as const, method: 'notifications/big', params: { data: 'x'.repeat(MiB) } };
  for (let i = 0; i < 5; i++) h.child.send(big);
  // A quiet period, bounded: the EPIPE these writes meet comes within a turn or two of the event loop, and
  // has no event of its own (the module swallows it); thrown, it would end this process long before 200 ms.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(h.exits, [], 'the child is still running');
  await within(h.child.stop(), 'stop', 5000);
  h.child.send(big);
});

test('a child that stops reading its stdin is stopped once more than the bound waits for it', async () => {
  const bound = MiB;
  // stubborn never reads its stdin, and ignores TERM: it is KILLed after the grace.
  const h = start('stubborn', [], { stopGraceMs: 300, maxQueuedStdin: bound });
  const { pid, grandchild } = await stubbornPids(h);
  const data = 'x'.repeat(64 * 1024);
  const message: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/big', params: { data } };
  const line = JSON.stringify(message).length + 1;
  // One message per turn of the event loop, as requests come in, until the proxy gives up (or never would).
  for (let sent = 0; h.stuck.length === 0 && sent < 64 * MiB; sent += line) {
    h.child.send(message);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.is(h.stuck.length, 1, 'found stuck');
  const [queued = 0] = h.stuck;
  assert.ok(
    queued > bound && queued <= bound + line,
    `${queued} characters queued at most one line past the bound`,
  );
  for (let i = 0; i < 5; i++) h.child.send(message);
  assert.is(h.stuck.length, 1, 'later messages are dropped, not counted again');
  await waitFor(() => h.exits.length === 1, 5000, 'the exit');
  assert.equal(h.exits, [{ code: null, signal: 'SIGKILL' }]);
  await allGone([pid, grandchild], 'the group to be gone');
});

test('the bound counts what the child has not taken yet: a larger message still goes to a child that reads', async () => {
  const h = start('echo-lines', [], { maxQueuedStdin: 256 * 1024 });
  const message: JSONRPCMessage = {
    jsonrpc: '2.0',
    method: 'notifications/big',
    params: { data: 'x'.repeat(MiB) },
  };
  for (let i = 1; i <= 3; i++) {
    h.child.send(message);
    await waitFor(() => h.messages.length === i, 10_000, `big message ${i} back`);
  }
  assert.equal(h.messages, [message, message, message]);
  assert.equal(h.stuck, []);
  assert.equal(h.exits, []);
});

test('a command that does not exist reports through onexit, asynchronously', async () => {
  const h = start('echo-lines', [], { command: 'mcp-proxy-no-such-command', env: { PATH: '/nowhere' } });
  assert.is(h.child.pid, undefined);
  assert.equal(h.exits, [], 'not reported synchronously');
  await within(h.child.stop(), 'the spawn failure', 5000);
  assert.is(h.exits.length, 1);
  const [exit] = h.exits;
  assert.equal([exit?.code, exit?.signal], [null, null]);
  assert.is(exit?.error?.message, 'command "mcp-proxy-no-such-command" not found on PATH (/nowhere)');
  h.child.send({ jsonrpc: '2.0', method: 'notifications/nobody-listens' });
});

test('a missing working directory is named as the cause', async () => {
  const h = start('echo-lines', [], { cwd: '/nonexistent/mcp-proxy' });
  await waitFor(() => h.exits.length === 1, 5000, 'the spawn failure');
  assert.is(h.exits[0]?.error?.message, 'working directory /nonexistent/mcp-proxy does not exist');
});

test('an argument Node refuses to pass is reported through onexit too', async () => {
  const h = start('echo-lines', ['a\0b']);
  assert.equal(h.exits, []);
  await waitFor(() => h.exits.length === 1, 5000, 'the spawn failure');
  assert.match(h.exits[0]?.error?.message ?? '', 'null bytes');
});

test('the child sees exactly the environment computed for it', async () => {
  const env = childEnvironment(
    { env: { GREETING: 'hello' }, useWorkloadIdentity: false },
    { PATH: process.env.PATH, LANG: 'C.UTF-8', SECRET_TOKEN: 'leak?', AZURE_CLIENT_ID: 'client-id' },
  );
  const h = start('echo-lines', [], { env });
  assert.equal(await request(h, 'env'), {
    env: { PATH: process.env.PATH, LANG: 'C.UTF-8', GREETING: 'hello' },
  });
});

/** Runs the stand-in proxy to its end; returns the pids it reported. */
async function runParent(mode: 'exit' | 'throw') {
  const parent = spawn(process.execPath, [fixture('spawning-parent'), mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const read = (text: string) => {
    const reported = JSON.parse(text) as { child: number; grandchild: number };
    return [reported.child, reported.grandchild];
  };
  // Read as soon as their line is whole: the child and grandchild ignore TERM, so should the parent not
  // end, or not as expected, they must still be known to be killed.
  let pids: number[] = [];
  parent.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
    if (pids.length > 0 || !stdout.includes('\n')) return;
    try {
      pids = read(stdout);
    } catch {
      // Not the pids: read again below, it says so.
    }
  });
  parent.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  try {
    const code = await within(
      new Promise<number | null>((resolve) => parent.on('close', resolve)),
      'the parent to end',
      10_000,
    );
    // All it printed is the one line.
    pids = read(stdout);
    assert.ok(pids.every(Number.isInteger), `the parent reported two pids: ${stdout}`);
    return { code, stderr, pids };
  } catch (error) {
    parent.kill('SIGKILL');
    for (const pid of pids.filter(isAlive)) process.kill(pid, 'SIGKILL');
    throw error;
  }
}

async function assertNothingLeft(pids: number[]) {
  try {
    await allGone(pids, 'the children of the ended parent to be gone');
  } finally {
    for (const pid of pids.filter(isAlive)) process.kill(pid, 'SIGKILL');
  }
}

test('a proxy that exits leaves no child behind', async () => {
  const { code, pids } = await runParent('exit');
  // Cleaned up whatever the assertion says: the children ignore TERM, and nothing else would end them.
  try {
    assert.is(code, 0);
  } finally {
    await assertNothingLeft(pids);
  }
});

test('a proxy that crashes leaves no child behind', async () => {
  const { code, stderr, pids } = await runParent('throw');
  try {
    assert.is(code, 1);
    assert.match(stderr, 'boom: the proxy crashed');
  } finally {
    await assertNothingLeft(pids);
  }
});

test.run();
