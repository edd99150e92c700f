/**
 * `--profile`: this proxy (shared stdio echo) under `node --cpu-prof`, once at 32 concurrent clients and
 * once for sequential echo; each profile is summarized by self time per function (file:line, mapped back
 * to src/*.ts through the build's source maps), by area (proxy, SDK, Koa, Node internals, GC), and by
 * inclusive time for the proxy's and the SDK's frames.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { SourceMap } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './run.js';
import {
  emptyFigures,
  measureConcurrent,
  measureSequential,
  cpuPerCallMs,
  mainCpuPerCallMs,
  warmUp,
} from './measure.js';
import { repoRoot } from './paths.js';
import { descendants, stop, threadDelta, threadTicks, type ThreadTicks } from './procs.js';
import { median, percentile, round } from './stats.js';
import { echoServer, startNative, startProxy, type Target } from './targets.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const maps = new Map<string, SourceMap | undefined>();

function sourceMapFor(file: string): SourceMap | undefined {
  if (!maps.has(file)) {
    let map: SourceMap | undefined;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = undefined;
    }
    maps.set(file, map);
  }
  return maps.get(file);
}

/** Where a frame is, as a person looks for it: src/…ts:line for the proxy, a package path otherwise. */
export function locate(frame: CallFrame): { where: string; area: string } {
  const { url, lineNumber, columnNumber } = frame;
  if (url === '') return { where: '(native)', area: nativeArea(frame.functionName) };
  if (url.startsWith('node:')) {
    const name = url.replace(/^node:(internal\/)?/, '');
    const area = `node ${name.replace(/^_/, '').split(/[/_]/)[0]}`;
    return { where: `${url}:${lineNumber + 1}`, area };
  }
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = relative(repoRoot, file);
  if (rel.startsWith(join('dist', 'src'))) {
    const entry = sourceMapFor(file)?.findEntry(lineNumber, columnNumber) as
      { originalSource?: string; originalLine?: number } | undefined;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
      const source = entry.originalSource.startsWith('file://')
        ? fileURLToPath(entry.originalSource)
        : resolve(dirname(file), entry.originalSource);
      return { where: `${relative(repoRoot, source)}:${entry.originalLine + 1}`, area: 'proxy src' };
    }
    return { where: `${rel}:${lineNumber + 1}`, area: 'proxy src' };
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(rel)?.[1];
  const area =
    pkg === undefined
      ? 'other'
      : pkg.startsWith('@modelcontextprotocol/')
        ? 'MCP SDK'
        : /^(koa|@koa\/|koa-|http-errors|statuses|on-finished|content-type|type-is|accepts|cookies|vary|depd)/.test(
              pkg,
            )
          ? 'Koa and its helpers'
          : pkg;
  return { where: `${rel.replace(/^.*node_modules\//, '')}:${lineNumber + 1}`, area };
}

function nativeArea(name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'V8/native (program)';
  if (name === '(root)') return 'root';
  return 'V8 builtins';
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  self: { fn: string; where: string; area: string; ms: number; pct: number }[];
  areas: { area: string; ms: number; pct: number }[];
  inclusive: { fn: string; where: string; ms: number; pct: number }[];
}

/** Only the samples taken inside `window` (µs, CLOCK_MONOTONIC) count: start-up and shutdown are left out. */
export function summarizeProfile(profile: CpuProfile, window?: [number, number], top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window[0] || t > window[1])) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  const keyOf = (n: ProfileNode) => {
    const { where } = locate(n.callFrame);
    return `${n.callFrame.functionName || '(anonymous)'}\u0000${where}`;
  };
  const selfByKey = new Map<string, number>();
  const areaUs = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const n of profile.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    total += us;
    const { area } = locate(n.callFrame);
    if (area === 'idle') idle += us;
    areaUs.set(area, (areaUs.get(area) ?? 0) + us);
    selfByKey.set(keyOf(n), (selfByKey.get(keyOf(n)) ?? 0) + us);
  }
  // Inclusive time per function, each sample counted once per function even under recursion.
  const inclusive = new Map<string, number>();
  const root = profile.nodes[0]!;
  const onStack = new Map<string, number>();
  const subtree = new Map<number, number>();
  // Iterative post-order DFS: the call tree can be deep.
  const stack: { node: ProfileNode; entered: boolean }[] = [{ node: root, entered: false }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    const key = keyOf(top.node);
    if (!top.entered) {
      onStack.set(key, (onStack.get(key) ?? 0) + 1);
      stack.push({ node: top.node, entered: true });
      for (const c of top.node.children ?? []) stack.push({ node: byId.get(c)!, entered: false });
      continue;
    }
    let sum = selfUs.get(top.node.id) ?? 0;
    for (const c of top.node.children ?? []) sum += subtree.get(c) ?? 0;
    subtree.set(top.node.id, sum);
    const depth = onStack.get(key)! - 1;
    onStack.set(key, depth);
    if (depth === 0) inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
  }
  const busy = total - idle;
  const pct = (us: number) => round((us / busy) * 100, 1)!;
  const split = (key: string) => key.split('\u0000') as [string, string];
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    busyMs: busy / 1000,
    self: [...selfByKey]
      .map(([key, us]) => {
        const [fn, where] = split(key);
        return { fn, where, area: '', us };
      })
      .filter((e) => e.fn !== '(idle)')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => {
        const node = profile.nodes.find((n) => keyOf(n) === `${e.fn}\u0000${e.where}`)!;
        return {
          fn: e.fn,
          where: e.where,
          area: locate(node.callFrame).area,
          ms: e.us / 1000,
          pct: pct(e.us),
        };
      }),
    areas: [...areaUs]
      .filter(([area]) => area !== 'idle' && area !== 'root')
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: us / 1000, pct: pct(us) })),
    inclusive: [...inclusive]
      .map(([key, us]) => ({ key, us }))
      .filter(({ key }) => /\u0000(src\/|@modelcontextprotocol|koa|@koa)/.test(key))
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ key, us }) => {
        const [fn, where] = split(key);
        return { fn, where, ms: us / 1000, pct: pct(us) };
      }),
  };
}

function profileMarkdown(title: string, context: string, s: ProfileSummary): string {
  const f = (v: number, d = 1) => String(round(v, d));
  return [
    `### ${title}`,
    '',
    context,
    '',
    `Sampled ${f(s.totalMs, 0)} ms, busy ${f(s.busyMs, 0)} ms (idle ${f(s.idleMs, 0)} ms). Percentages are of busy time.`,
    '',
    '| self ms | % | function | where | area |',
    '| --- | --- | --- | --- | --- |',
    ...s.self.map((e) => `| ${f(e.ms)} | ${e.pct} | \`${e.fn}\` | ${e.where} | ${e.area} |`),
    '',
    '| area | self ms | % |',
    '| --- | --- | --- |',
    ...s.areas.slice(0, 15).map((a) => `| ${a.area} | ${f(a.ms)} | ${a.pct} |`),
    '',
    'Inclusive time, proxy / SDK / Koa frames:',
    '',
    '| incl. ms | % | function | where |',
    '| --- | --- | --- | --- |',
    ...s.inclusive.map((e) => `| ${f(e.ms)} | ${e.pct} | \`${e.fn}\` | ${e.where} |`),
    '',
  ].join('\n');
}

function readProfile(dir: string): CpuProfile {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
}

interface Window {
  set(startUs: number, endUs: number): void;
}

const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * V8's profiler samples wall-clock time: on a busy two-core machine, time the proxy spends preempted (its
 * write to the child's stdin wakes the child, which takes the core) is charged to whatever frame it was in.
 * So, when it can, the profile run gives the proxy a core of its own (CPU 1) and puts the clients and the
 * child on the other (CPU 0): the profile then shows the proxy's own costs.
 */
function pinning():
  { proxy: string[]; pinChildren(pid: number): void; pinSelf(): void; unpinSelf(): void } | undefined {
  if (cpus().length < 2 || spawnSync('taskset', ['-V']).status !== 0) return undefined;
  const set = (cpuList: string, pid: number) =>
    spawnSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)]);
  return {
    proxy: ['taskset', '-c', '1'],
    pinChildren: (pid) => descendants([pid]).forEach((d) => set('0', d.pid)),
    pinSelf: () => set('0', process.pid),
    unpinSelf: () => set(`0-${cpus().length - 1}`, process.pid),
  };
}

async function profiled(
  dir: string,
  run: (target: Target, window: Window) => Promise<string>,
  logLevel = 'warn',
  pin = pinning(),
  server: 'stdio' | 'remote' = 'stdio',
  warmupCalls = 3000,
): Promise<{ context: string; profile: CpuProfile; window?: [number, number] }> {
  mkdirSync(dir, { recursive: true });
  // The remote passthrough's upstream is a native SDK server, started by the bench (so on the bench's core).
  const upstream = server === 'remote' ? await startNative() : undefined;
  const proxy = await startProxy(
    { servers: { echo: upstream ? { url: upstream.url } : echoServer() } },
    { logLevel, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir], ...(pin && { wrapper: pin.proxy }) },
  );
  pin?.pinChildren(proxy.started.pid);
  const target: Target = {
    id: 'proxy-shared',
    label: 'this proxy, shared (profiled)',
    client: { kind: 'http', url: `${proxy.base}/servers/echo/mcp` },
    main: proxy.started,
    alsoMeasured: [],
    helpers: [],
    phases: new Set(),
    slow: false,
    listening: [],
  };
  let context: string;
  let window: [number, number] | undefined;
  try {
    await warmUp(target, warmupCalls);
    context = await run(target, { set: (a, b) => (window = [a, b]) });
  } finally {
    // SIGTERM: the proxy shuts down and exits normally, which is when Node writes the profile.
    await stop(proxy.started);
    if (upstream) await stop(upstream.started);
  }
  return { context, profile: readProfile(dir), ...(window && { window }) };
}

export async function profile(
  cfg: Config,
  dir: string,
  workers: number,
  rawLoad = false,
  pin = true,
): Promise<string> {
  const pins = pin ? pinning() : undefined;
  pins?.pinSelf();
  try {
    return await profileRuns(cfg, dir, workers, rawLoad, pins);
  } finally {
    pins?.unpinSelf();
  }
}

async function profileRuns(
  cfg: Config,
  dir: string,
  workers: number,
  rawLoad: boolean,
  pins: ReturnType<typeof pinning>,
): Promise<string> {
  /** The proxy's CPU per thread over the window: where /proc's CPU goes that the main thread's samples miss. */
  const threads = (
    pid: number,
    calls: number,
    before: Map<number, ThreadTicks>,
    after: Map<number, ThreadTicks> = threadTicks(pid),
  ) => {
    const rows = threadDelta(before, after).filter((t) => t.userMs + t.systemMs > 0);
    const perCall = (ms: number) => round((ms / Math.max(1, calls)) * 1000, 1);
    return [
      '',
      'The proxy process per thread over the window (from /proc/<pid>/task; µs per call, user + system):',
      '',
      '| thread | user µs/call | system µs/call |',
      '| --- | --- | --- |',
      ...rows.map((t) => `| ${t.name} | ${perCall(t.userMs)} | ${perCall(t.systemMs)} |`),
    ].join('\n');
  };
  const concurrent = (logLevel: string) => async (target: Target, window: Window) => {
    const figures = emptyFigures();
    const pid = target.main!.pid;
    let before = new Map<number, ThreadTicks>();
    let after = new Map<number, ThreadTicks>();
    await measureConcurrent(target, figures, 32, cfg.profileMs, {
      workers,
      maxCalls: 10_000_000,
      afterMs: 200,
      raw: rawLoad,
      onWindow: window.set,
      onGo: () => (before = threadTicks(pid)),
      onDone: () => (after = threadTicks(pid)),
    });
    const l = figures.levels[32]!;
    const split = threads(pid, l.calls, before, after);
    return `32 concurrent ${rawLoad ? 'bare HTTP' : 'SDK'} clients for ${cfg.profileMs / 1000} s under --cpu-prof, LOG_LEVEL=${logLevel}: ${round((l.calls / l.elapsedMs) * 1000, 0)} calls/s, ${round(cpuPerCallMs(l), 3)} ms CPU per call (proxy + child; proxy alone ${round(mainCpuPerCallMs(l), 3)} ms), p50 ${round(median(l.latencies), 2)} ms, ${l.errors} errors.${split}`;
  };
  const sequential = (calls: number, bytes: number) => async (target: Target, window: Window) => {
    const figures = emptyFigures();
    const before = threadTicks(target.main!.pid);
    const start = monoUs();
    await measureSequential(target, figures.seq, calls, 120_000, bytes > 0 ? 'x'.repeat(bytes) : 'hello');
    window.set(start, monoUs());
    const ms = figures.seq.ms;
    return `${ms.length} sequential echo calls${bytes > 0 ? ` of ${bytes / 1024} KiB` : ''} under --cpu-prof: p50 ${round(median(ms), 3)} ms, p99 ${round(percentile(ms, 99), 3)} ms, ${figures.seq.errors} errors.${threads(target.main!.pid, ms.length, before)}`;
  };
  const runs: [string, string, (t: Target, w: Window) => Promise<string>, string, 'stdio' | 'remote'][] = [
    ['c32', '32 concurrent clients', concurrent('warn'), 'warn', 'stdio'],
    ['seq', 'Sequential echo', sequential(cfg.profileSeqCalls, 0), 'warn', 'stdio'],
    [
      'mib',
      'Sequential 1 MiB echo',
      sequential(Math.max(5, Math.round(cfg.profileSeqCalls / 100)), 1024 * 1024),
      'warn',
      'stdio',
    ],
    ['c32-info', '32 concurrent clients, LOG_LEVEL=info (the default)', concurrent('info'), 'info', 'stdio'],
    [
      'remote-seq',
      'Sequential echo through the remote passthrough',
      sequential(cfg.profileSeqCalls, 0),
      'warn',
      'remote',
    ],
  ];
  const sections: string[] = [];
  for (const [name, title, run, level, server] of runs) {
    const result = await profiled(join(dir, name), run, level, pins, server, cfg.warmupCalls);
    sections.push(profileMarkdown(title, result.context, summarizeProfile(result.profile, result.window)));
  }
  return [
    `## Profile of this proxy (shared stdio echo; and the remote passthrough), ${new Date().toISOString()}`,
    '',
    pins
      ? 'The proxy ran alone on CPU 1; the clients and the fixture child on CPU 0 (taskset), so that the proxy is not preempted mid-call and the samples show its own costs. Throughput here is capped by CPU 0, not by the proxy.'
      : 'Not pinned: on a busy machine the samples include time the proxy spent preempted.',
    '',
    `Profiles: ${relative(repoRoot, dir)}/{${runs.map((r) => r[0]).join(',')}}/*.cpuprofile (Chrome DevTools or speedscope open them).`,
    '',
    ...sections,
  ].join('\n');
}
