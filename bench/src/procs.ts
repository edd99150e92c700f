/**
 * What the kernel says about processes: RSS, CPU time and parentage from /proc, so that a target's whole
 * process tree (the proxy and the children it spawned, shells included) is measured alike for every target.
 * Linux only, like the machines this runs on.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

function getconf(name: string, fallback: number): number {
  try {
    const value = Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : fallback;
  } catch {
    return fallback;
  }
}

export const PAGE_BYTES = getconf('PAGESIZE', 4096);
/** Clock ticks per second, the unit of utime and stime in /proc/<pid>/stat. */
export const CLOCK_TICKS = getconf('CLK_TCK', 100);

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime: CPU spent by the process itself. */
  ownTicks: number;
  /** cutime + cstime: CPU of its children (and theirs) that it has waited for, i.e. that are gone. */
  reapedTicks: number;
  rssBytes: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may contain spaces or parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(fields[i]);
  return {
    pid,
    ppid: n(1),
    ownTicks: n(11) + n(12),
    reapedTicks: n(13) + n(14),
    rssBytes: n(21) * PAGE_BYTES,
  };
}

/** A process running the fixture itself: its argv names the fixture and argv[0] is not a shell wrapping it. */
export function isFixture(pid: number, mark: string): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const program = (argv[0] ?? '').split('/').pop() ?? '';
  return !/^(sh|bash|dash|zsh)$/.test(program) && argv.slice(1).some((a) => a.includes(mark));
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Every process now, by pid. */
export function snapshot(): Map<number, ProcStat> {
  const all = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) all.set(stat.pid, stat);
  }
  return all;
}

/** The descendants of `roots` (not the roots themselves), found through ppid. */
export function descendants(roots: readonly number[], all = snapshot()): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const stat of all.values()) {
    const list = children.get(stat.ppid) ?? [];
    list.push(stat);
    children.set(stat.ppid, list);
  }
  const found: ProcStat[] = [];
  const queue = [...roots];
  const seen = new Set(roots);
  // Bounded by the number of processes: each pid is visited once.
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

export interface TreeSample {
  /** CPU ticks of the roots and all their descendants, living and reaped. */
  ticks: number;
  rootRssBytes: number;
  /** Descendants only. */
  childRssBytes: number;
  /** Descendants running the fixture server (shell wrappers are not counted). */
  fixtureChildren: number;
  /** All descendants, shells included. */
  descendantPids: number[];
}

/**
 * One look at a process tree. CPU counts each living process's own time plus what it reaped, so a child
 * that exited between two samples (a process per request) is still counted, in its parent.
 */
export function sampleTree(roots: readonly number[], fixtureMark: string): TreeSample {
  const all = snapshot();
  const rootStats = roots.map((pid) => all.get(pid)).filter((s): s is ProcStat => s !== undefined);
  const below = descendants(roots, all);
  let ticks = 0;
  for (const s of [...rootStats, ...below]) ticks += s.ownTicks + s.reapedTicks;
  return {
    ticks,
    rootRssBytes: rootStats.reduce((sum, s) => sum + s.rssBytes, 0),
    childRssBytes: below.reduce((sum, s) => sum + s.rssBytes, 0),
    fixtureChildren: below.filter((s) => isFixture(s.pid, fixtureMark)).length,
    descendantPids: below.map((s) => s.pid),
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The local addresses a process listens on (TCP), from its socket inodes and /proc/net/tcp{,6}. */
export function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[];
    try {
      lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A' || !inodes.has(cols[9]!)) continue; // 0A: LISTEN
      found.push(decodeAddress(cols[1]!));
    }
  }
  return found;
}

function decodeAddress(hex: string): string {
  const [addr, port] = hex.split(':') as [string, string];
  const p = parseInt(port, 16);
  if (addr.length === 8) {
    const bytes = addr
      .match(/../g)!
      .map((b) => parseInt(b, 16))
      .reverse();
    return `${bytes.join('.')}:${p}`;
  }
  if (addr === '0'.repeat(32)) return `[::]:${p}`;
  if (addr === '0000000000000000FFFF00000100007F') return `[::ffff:127.0.0.1]:${p}`;
  if (addr === '00000000000000000000000001000000') return `[::1]:${p}`;
  return `[${addr}]:${p}`;
}

export const isLoopbackAddress = (address: string) =>
  /^127\./.test(address) || address.startsWith('[::1]') || address.startsWith('[::ffff:127.');

/** A port free on 127.0.0.1 now, for peers that cannot be told to take port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A process started by the bench, in its own process group, with everything it ever spawned tracked. */
export interface Started {
  proc: ChildProcess;
  pid: number;
  /** Every descendant ever seen while sampling, pid → command line: checked for survivors after stop. */
  seen: Map<number, string>;
  output(): string;
}

export function start(command: string, args: string[], options: SpawnOptions): Started {
  const proc = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, pid: proc.pid, seen: new Map(), output: () => output };
}

/** Resolves with the first match of `pattern` in the process's output, or rejects after `ms`. */
export async function waitForOutput(started: Started, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const match = pattern.exec(started.output());
    if (match) return match;
    if (started.proc.exitCode !== null || started.proc.signalCode !== null) {
      throw new Error(`exited (${started.proc.exitCode ?? started.proc.signalCode}):\n${started.output()}`);
    }
    await sleep(10);
  }
  throw new Error(`no ${pattern} within ${ms} ms:\n${started.output()}`);
}

/** Notes the process's current descendants, so that survivors can be found after it is stopped. */
export function track(started: Started): void {
  for (const d of descendants([started.pid])) {
    if (!started.seen.has(d.pid)) started.seen.set(d.pid, cmdline(d.pid));
  }
}

/**
 * SIGTERM to the process (by pid), SIGKILL after `graceMs`; then any descendant it left behind is
 * reported and killed by its pid. Resolves with the survivors' command lines.
 */
export async function stop(started: Started, graceMs = 10_000): Promise<string[]> {
  track(started);
  const { proc } = started;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  // Children are stopped asynchronously by some peers: give them a moment before calling them leaked.
  const deadline = Date.now() + 3000;
  let left = [...started.seen.keys()].filter(isAlive);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = left.filter(isAlive);
  }
  const survivors: string[] = [];
  for (const pid of left) {
    const line = cmdline(pid);
    // Only the process that was seen: a pid reused by someone else since is not ours to signal.
    if (line === '' || line !== started.seen.get(pid)) continue;
    survivors.push(`${pid} ${line}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return survivors;
}

export interface ThreadTicks {
  /** Thread name (comm), e.g. node (the main thread), V8 DefaultWorke (GC and compiler helpers), libuv-worker. */
  name: string;
  user: number;
  system: number;
}

/** CPU ticks per thread of one process, by thread id. */
export function threadTicks(pid: number): Map<number, ThreadTicks> {
  const out = new Map<number, ThreadTicks>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Node's own helper threads keep the process name: tell the main (JavaScript) thread apart.
      const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      const name = Number(tid) === pid ? `${comm} (main thread)` : comm;
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { name, user: Number(fields[11]), system: Number(fields[12]) });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Per thread name: CPU ms between two looks (threads that started or ended in between count what they have). */
export function threadDelta(
  before: Map<number, ThreadTicks>,
  after: Map<number, ThreadTicks>,
): { name: string; userMs: number; systemMs: number }[] {
  const byName = new Map<string, { userMs: number; systemMs: number }>();
  for (const [tid, t] of after) {
    const b = before.get(tid);
    const entry = byName.get(t.name) ?? { userMs: 0, systemMs: 0 };
    entry.userMs += ((t.user - (b?.user ?? 0)) / CLOCK_TICKS) * 1000;
    entry.systemMs += ((t.system - (b?.system ?? 0)) / CLOCK_TICKS) * 1000;
    byName.set(t.name, entry);
  }
  return [...byName]
    .map(([name, e]) => ({ name, ...e }))
    .sort((a, b) => b.userMs + b.systemMs - (a.userMs + a.systemMs));
}
