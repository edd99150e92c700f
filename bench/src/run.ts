/**
 * The side-by-side benchmark (issue 7): this proxy against direct stdio, a native SDK HTTP server and the
 * peers from the npm registry, in one run on one machine, rounds interleaved across targets.
 *
 *   node bench/dist/run.js [--quick] [--rounds N] [--workers N] [--only id,id] [--no-extras] [--raw-load]
 *   node bench/dist/run.js --profile [--quick] [--raw-load] [--no-pin]
 *
 * Targets (for --only): direct, native, proxy-shared, proxy-session, proxy-remote, proxy-shared-info,
 * tcp-relay, http-floor, sg-stateful, sg-stateless, mcp-proxy. --raw-load drives the concurrent phases with
 * bare HTTP clients instead of the SDK's (whose own CPU caps every HTTP target on a small machine).
 *
 * Prints markdown, saves JSON (and the markdown) under bench/results/. Asserts nothing: `--quick` is a
 * smoke run for CI.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { describeError } from './clients.js';
import { abandonFigure, idleServers, reloadFigure, type AbandonFigure } from './extras.js';
import {
  emptyFigures,
  measureConcurrent,
  measureOpen,
  measurePayloads,
  measureSequentialInterleaved,
  warmUp,
  type TargetFigures,
} from './measure.js';
import {
  benchDir,
  cliPath,
  echoFixture,
  FIXTURE_MARK,
  fromBench,
  mcpProxyBin,
  supergatewayBin,
} from './paths.js';
import { cmdline, descendants, isLoopbackAddress, sampleTree } from './procs.js';
import { profile } from './profile.js';
import { markdown, summarize, verdicts, type Extras } from './report.js';
import { median, round } from './stats.js';
import {
  directTarget,
  echoServer,
  httpFloorTarget,
  mcpProxyTarget,
  nativeTarget,
  proxyTarget,
  startNative,
  stopTarget,
  supergatewayTarget,
  tcpRelayTarget,
  type Target,
} from './targets.js';

// The SDK's HTTP client leaves an abort listener on its transport's signal per call (thousands on a long
// session): Node's warning about it would flood the output.
setMaxListeners(1_000_000);

export interface Config {
  rounds: number;
  /** Totals per target, split over the rounds. */
  openSamples: number;
  openSamplesSlow: number;
  openBudgetMs: number;
  seqCalls: number;
  /** Sequential echo interleaves the targets in blocks of this many calls (see measureSequentialInterleaved). */
  seqBlockCalls: number;
  seqBudgetMs: number;
  concMs: number;
  levels: number[];
  payloads: Record<string, number>;
  payloadBudgetMs: number;
  warmupCalls: number;
  /** Untimed calls of each payload size before its first timed one (see measurePayloads). */
  payloadWarmupCalls: number;
  /** Time after the clients of a level closed before children are counted. */
  afterMs: number;
  maxCallsPerWindow: number;
  abandonShared: number;
  abandonSession: number;
  abandonIdleTimeout: string;
  abandonBudgetMs: number;
  /** Quiet time before RSS is read at the start. */
  abandonSettleMs: number;
  /** How long the proxy may idle after reaping for its RSS to come back. */
  abandonReturnMs: number;
  reloadRepeats: number;
  idleServers: number;
  idleSettleMs: number;
  profileMs: number;
  profileSeqCalls: number;
}

const FULL: Config = {
  rounds: 3,
  openSamples: 30,
  openSamplesSlow: 6,
  openBudgetMs: 30_000,
  seqCalls: 500,
  seqBlockCalls: 25,
  seqBudgetMs: 30_000,
  concMs: 5_000,
  levels: [1, 8, 32],
  payloads: { '64KiB': 30, '1MiB': 30 },
  payloadBudgetMs: 30_000,
  warmupCalls: 3000,
  payloadWarmupCalls: 5,
  afterMs: 1500,
  maxCallsPerWindow: 1_000_000,
  abandonShared: 10_000,
  abandonSession: 50,
  abandonIdleTimeout: '2s',
  abandonBudgetMs: 300_000,
  abandonSettleMs: 2000,
  abandonReturnMs: 90_000,
  reloadRepeats: 5,
  idleServers: 10,
  idleSettleMs: 3000,
  profileMs: 8000,
  profileSeqCalls: 3000,
};

const QUICK: Config = {
  ...FULL,
  rounds: 1,
  openSamples: 2,
  openSamplesSlow: 1,
  openBudgetMs: 2000,
  seqCalls: 20,
  seqBlockCalls: 10,
  seqBudgetMs: 1500,
  concMs: 300,
  levels: [2],
  payloads: { '64KiB': 1, '1MiB': 1 },
  payloadBudgetMs: 3000,
  warmupCalls: 5,
  payloadWarmupCalls: 0,
  afterMs: 300,
  abandonShared: 200,
  abandonSession: 3,
  abandonIdleTimeout: '1s',
  abandonBudgetMs: 20_000,
  abandonSettleMs: 200,
  abandonReturnMs: 2000,
  reloadRepeats: 1,
  idleServers: 10,
  idleSettleMs: 500,
  profileMs: 1000,
  profileSeqCalls: 100,
};

interface Args {
  quick: boolean;
  profile: boolean;
  extras: boolean;
  only?: Set<string>;
  rounds?: number;
  workers: number;
  /** Concurrent phases with bare HTTP clients instead of the SDK's (direct stdio keeps the SDK's). */
  rawLoad: boolean;
  /** --profile: give the proxy a core of its own (taskset). */
  pin: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, profile: false, extras: true, workers: 2, rawLoad: false, pin: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--profile') args.profile = true;
    else if (a === '--no-extras') args.extras = false;
    else if (a === '--raw-load') args.rawLoad = true;
    else if (a === '--no-pin') args.pin = false;
    else if (a === '--only') args.only = new Set(argv[++i]?.split(','));
    else if (a === '--rounds') args.rounds = Number(argv[++i]);
    else if (a === '--workers') args.workers = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        readFileSync(new URL(import.meta.url))
          .toString()
          .split('*/')[0]!
          .replace(/^\/\*\*?/, ''),
      );
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return args;
}

const log = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** The peers come from bench/'s own lockfile, never the product's: installed here when missing. */
function ensurePeers(): void {
  if (existsSync(supergatewayBin) && existsSync(mcpProxyBin)) return;
  log('installing the peers: npm ci --prefix bench');
  const result = spawnSync('npm', ['ci', '--prefix', benchDir, '--no-audit', '--no-fund'], {
    stdio: 'inherit',
    timeout: 300_000,
  });
  if (result.status !== 0) throw new Error('npm ci --prefix bench failed');
}

export function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown';
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // cpus() then
  }
  return {
    nproc,
    cpu,
    node: process.version,
    kernel: release(),
    memoryGB: round(totalmem() / 2 ** 30, 1),
    loadavg: loadavg().map((v) => round(v, 2)),
  };
}

const live: Target[] = [];
let interrupted = false;

async function stopAll(): Promise<string[]> {
  const survivors: string[] = [];
  for (const t of live.splice(0)) survivors.push(...(await stopTarget(t).catch((e) => [describeError(e)])));
  return survivors;
}

process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  log('interrupted: stopping every target');
  void stopAll().then(() => process.exit(130));
});

/**
 * Targets reported as a line each, not as rows of the tables: the log's cost, and the yardsticks the remote
 * passthrough is read against (the floors of an extra hop and of a passthrough on node:http).
 */
const REFERENCE_TARGETS: ReadonlySet<string> = new Set(['proxy-shared-info', 'tcp-relay', 'http-floor']);

async function startTargets(
  args: Args,
): Promise<{ target: Target; figures: TargetFigures; error?: string }[]> {
  const warn = 'warn';
  // The remote passthrough calls the very server the native target is: "the same upstream directly" is then
  // the same process, warmed and loaded alike, not a second one whose p50 differs by its own luck.
  let nativeServer: ReturnType<typeof startNative> | undefined;
  const native = () => (nativeServer ??= startNative());
  const factories: [string, () => Promise<Target>][] = [
    ['direct', async () => directTarget()],
    ['native', async () => nativeTarget(await native())],
    [
      'proxy-shared',
      () => proxyTarget('proxy-shared', 'this proxy, shared', echoServer(), { logLevel: warn }),
    ],
    [
      'proxy-session',
      () =>
        proxyTarget('proxy-session', 'this proxy, session', echoServer({ isolation: 'session' }), {
          logLevel: warn,
          note: 'a child per session (prewarm 0)',
        }),
    ],
    [
      'proxy-remote',
      async () => {
        const upstream = await native();
        return proxyTarget(
          'proxy-remote',
          'this proxy, remote → native',
          { url: upstream.url },
          { logLevel: warn, note: 'passthrough to the native target’s own server; its CPU is counted too' },
          [upstream.started],
        );
      },
    ],
    [
      'proxy-shared-info',
      () =>
        proxyTarget('proxy-shared-info', 'this proxy, shared, LOG_LEVEL=info', echoServer(), {
          logLevel: 'info',
          phases: new Set(['seq', 'conc']),
          // Every level, as the warn target has: with only the last window, the optimising compiler's work
          // on the concurrent path lands in it and reads as the log's cost (+0.2 ms per call, measured).
          note: 'default logging: one access-log line per request',
        }),
    ],
    ['tcp-relay', async () => tcpRelayTarget(await native())],
    ['http-floor', async () => httpFloorTarget(await native())],
    ['sg-stateful', () => supergatewayTarget(true)],
    ['sg-stateless', () => supergatewayTarget(false)],
    ['mcp-proxy', mcpProxyTarget],
  ];
  // Started side by side: start-up is not measured, and the run is shorter.
  const chosen = factories.filter(([id]) => !args.only || args.only.has(id));
  return Promise.all(
    chosen.map(async ([id, factory]): Promise<{ target: Target; figures: TargetFigures; error?: string }> => {
      const t0 = performance.now();
      try {
        const target = await factory();
        live.push(target);
        const outside = target.listening.filter((a) => !isLoopbackAddress(a));
        if (outside.length > 0) throw new Error(`listens beyond loopback: ${outside.join(', ')}`);
        log(`started ${id} in ${Math.round(performance.now() - t0)} ms ${target.listening.join(' ')}`);
        return { target, figures: emptyFigures() };
      } catch (error) {
        log(`could not start ${id}: ${describeError(error)}`);
        return {
          target: {
            id,
            label: id,
            client: { kind: 'http', url: '' },
            alsoMeasured: [],
            helpers: [],
            phases: new Set(),
            slow: false,
            listening: [],
          },
          figures: emptyFigures(),
          error: `did not start: ${describeError(error)}`,
        };
      }
    }),
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cfg: Config = { ...(args.quick ? QUICK : FULL) };
  if (args.rounds) cfg.rounds = args.rounds;
  for (const file of [cliPath, echoFixture]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  }
  ensurePeers();
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const resultsDir = fromBench('results');
  mkdirSync(resultsDir, { recursive: true });
  const command = `node bench/dist/run.js ${process.argv.slice(2).join(' ')}`.trim();
  const host = machine();
  log(`${host.nproc} × ${host.cpu}, Node ${host.node}, load ${host.loadavg.join(' ')}`);

  if (args.profile) {
    const report = await profile(
      cfg,
      join(resultsDir, `profile-${stamp}`),
      args.workers,
      args.rawLoad,
      args.pin,
    );
    writeFileSync(join(resultsDir, `profile-${stamp}.md`), report);
    process.stdout.write(report);
    finalSweep();
    return;
  }

  const t0 = performance.now();
  const entries = await startTargets(args);
  const runnable = entries.filter((e) => !e.error);
  await Promise.all(
    runnable.map(async (e) => {
      try {
        await warmUp(
          e.target,
          e.target.slow ? Math.min(3, cfg.warmupCalls) : cfg.warmupCalls,
          e.target.slow ? 1 : 4,
        );
      } catch (error) {
        e.error = `warm-up failed: ${describeError(error)}`;
        log(`${e.target.id}: ${e.error}`);
      }
    }),
  );
  // Idle RSS once every warm-up is over, so that no target is read while it is still busy.
  for (const e of runnable) {
    if (!e.target.main) continue;
    const s = sampleTree([e.target.main.pid], FIXTURE_MARK);
    e.figures.idle = {
      rootRssBytes: s.rootRssBytes,
      childRssBytes: s.childRssBytes,
      children: s.fixtureChildren,
    };
  }
  const measured = runnable.filter((e) => !e.error);
  const per = (total: number) => Math.max(1, Math.ceil(total / cfg.rounds));

  type Entry = (typeof measured)[number];
  type Blame = (e: Entry, error: unknown) => void;
  /** A phase of a round, over the targets that take part in it; what fails is blamed on its target. */
  type Step = {
    name: string;
    phase: 'open' | 'seq' | 'payload' | 'conc';
    run: (entries: Entry[], blame: Blame) => Promise<void>;
  };
  /** A phase measured one target after another. */
  const eachTarget =
    (measure: (e: Entry) => Promise<void>) =>
    async (entries: Entry[], blame: Blame): Promise<void> => {
      for (const e of entries) {
        if (interrupted) return;
        await measure(e).catch((error: unknown) => blame(e, error));
      }
    };
  const steps: Step[] = [
    {
      name: 'session open',
      phase: 'open',
      run: eachTarget(({ target, figures }) =>
        measureOpen(
          target,
          figures.open,
          per(target.slow ? cfg.openSamplesSlow : cfg.openSamples),
          cfg.openBudgetMs / cfg.rounds,
        ),
      ),
    },
    {
      name: 'sequential echo',
      phase: 'seq',
      run: (entries) =>
        measureSequentialInterleaved(
          entries.map(({ target, figures }) => ({ target, samples: figures.seq })),
          per(cfg.seqCalls),
          cfg.seqBudgetMs / cfg.rounds,
          cfg.seqBlockCalls,
        ),
    },
    {
      name: 'payloads',
      phase: 'payload',
      run: eachTarget(({ target, figures }) =>
        measurePayloads(
          target,
          figures,
          Object.fromEntries(Object.entries(cfg.payloads).map(([k, v]) => [k, per(v)])),
          cfg.payloadBudgetMs / cfg.rounds,
          target.slow ? 0 : cfg.payloadWarmupCalls,
        ),
      ),
    },
    ...cfg.levels.map((clients): Step => ({
      name: `${clients} concurrent clients`,
      phase: 'conc',
      run: eachTarget(async ({ target, figures }) => {
        if (target.levels && !target.levels.includes(clients)) return;
        await measureConcurrent(target, figures, clients, cfg.concMs / cfg.rounds, {
          workers: args.workers,
          maxCalls: cfg.maxCallsPerWindow,
          afterMs: cfg.afterMs,
          raw: args.rawLoad,
        });
      }),
    })),
  ];

  for (let round = 0; round < cfg.rounds && !interrupted; round++) {
    // Each round starts the order at another target, so drift and warm caches hit every target alike.
    const order = measured.map((_, i) => measured[(i + round) % measured.length]!);
    for (const step of steps) {
      const t1 = performance.now();
      const taking = order.filter((e) => e.target.phases.has(step.phase));
      const blame: Blame = (e, error) => (e.error ??= `${step.name}: ${describeError(error)}`);
      await step.run(taking, blame).catch((error: unknown) => taking.forEach((e) => blame(e, error)));
      log(`round ${round + 1}/${cfg.rounds}: ${step.name} (${Math.round(performance.now() - t1)} ms)`);
    }
  }
  const leftovers = await stopAll();
  log(`targets measured and stopped in ${Math.round((performance.now() - t0) / 1000)} s`);

  const extras: Extras = { errors: [] };
  if (args.extras && !interrupted && (!args.only || args.only.has('proxy-shared'))) {
    const attempt = async <T>(name: string, run: () => Promise<T>): Promise<T | undefined> => {
      const t1 = performance.now();
      try {
        return await run();
      } catch (error) {
        extras.errors.push(`${name}: ${describeError(error)}`);
        return undefined;
      } finally {
        log(`${name} (${Math.round(performance.now() - t1)} ms)`);
      }
    };
    const idle = await attempt('idle servers', () => idleServers(cfg.idleServers, cfg.idleSettleMs));
    if (idle) extras.idle = idle;
    const reload = await attempt('reload', () => reloadFigure(cfg.reloadRepeats));
    if (reload) extras.reload = reload;
    const abandon = (isolation: 'shared' | 'session', count: number) =>
      attempt(`${count} abandoned sessions (${isolation})`, () =>
        abandonFigure(isolation, count, {
          concurrency: isolation === 'shared' ? 32 : 8,
          budgetMs: cfg.abandonBudgetMs,
          idleTimeout: cfg.abandonIdleTimeout,
          settleMs: cfg.abandonSettleMs,
          returnBudgetMs: cfg.abandonReturnMs,
        }),
      );
    const shared: AbandonFigure | undefined = await abandon('shared', cfg.abandonShared);
    if (shared) extras.abandonShared = shared;
    const session = await abandon('session', cfg.abandonSession);
    if (session) extras.abandonSession = session;
    for (const a of [shared, session]) if (a?.survivors.length) leftovers.push(...a.survivors);
  }

  // Reference targets: measured like the others, reported as a line each rather than as rows.
  const references = new Map(
    summarize(
      entries.filter((e) => REFERENCE_TARGETS.has(e.target.id)),
      cfg.levels,
    ).map((summary) => [summary.id, summary]),
  );
  const rows = summarize(
    entries.filter((e) => !REFERENCE_TARGETS.has(e.target.id)),
    cfg.levels,
  );
  const info = references.get('proxy-shared-info');
  const floors = { relay: references.get('tcp-relay'), http: references.get('http-floor') };
  const plain = rows.find((r) => r.id === 'proxy-shared');
  const top = Math.max(...cfg.levels);
  const logCost =
    info && plain
      ? `log cost (LOG_LEVEL=info, the default, against warn): echo p50 ${round(info.seqP50, 3)} vs ${round(plain.seqP50, 3)} ms; calls/s @${top} ${round(info.callsPerSecond[top], 0)} vs ${round(plain.callsPerSecond[top], 0)}; CPU/call @${top} ${round(info.cpuMsPerCall, 3)} vs ${round(plain.cpuMsPerCall, 3)} ms`
      : undefined;
  const found = verdicts(rows, extras, cfg.levels, floors);
  const text = markdown(rows, extras, found, cfg.levels, logCost);
  const sweep = finalSweep();
  leftovers.push(...sweep);

  const result = {
    date: started.toISOString(),
    command,
    quick: args.quick,
    machine: { ...host, loadavgEnd: loadavg().map((v) => round(v, 2)) },
    config: cfg,
    workers: args.workers,
    loadClient: args.rawLoad ? 'raw node:http (direct stdio: SDK)' : 'SDK',
    seconds: round((performance.now() - t0) / 1000, 1),
    targets: entries.map((e) => ({
      id: e.target.id,
      label: e.target.label,
      note: e.target.note,
      listening: e.target.listening,
      error: e.error,
      summary: rows.find((r) => r.id === e.target.id) ?? references.get(e.target.id),
      raw: {
        open: e.figures.open,
        seq: e.figures.seq,
        payload: Object.fromEntries(Object.entries(e.figures.payload).map(([k, s]) => [k, s])),
        levels: Object.fromEntries(
          Object.entries(e.figures.levels).map(([k, l]) => [
            k,
            { ...l, latencies: undefined, latencyP50: median(l.latencies) },
          ]),
        ),
        idle: e.figures.idle,
      },
    })),
    extras,
    logCost,
    verdicts: found,
    leftovers,
  };
  const jsonPath = join(
    resultsDir,
    `bench-${stamp}${args.quick ? '-quick' : ''}${args.rawLoad ? '-raw' : ''}.json`,
  );
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  const heading =
    `## mcp-proxy-server bench (${args.quick ? 'quick' : 'full'}${args.rawLoad ? ', bare HTTP load clients' : ''}), ` +
    `${host.nproc} × ${host.cpu}, Node ${host.node}, ${started.toISOString()}\n\n\`${command}\`\n`;
  writeFileSync(jsonPath.replace(/\.json$/, '.md'), `${heading}\n${text}`);
  process.stdout.write(
    `\n${heading}\n${text}\n` +
      `Leftover processes: ${leftovers.length === 0 ? 'none' : leftovers.join('; ')}\nSaved ${jsonPath}\n`,
  );
  log(`done in ${result.seconds} s`);
}

/** Anything this process started that still runs is reported and stopped, by pid. */
function finalSweep(): string[] {
  const left = descendants([process.pid]);
  const found: string[] = [];
  for (const d of left) {
    const line = cmdline(d.pid);
    if (line === '' || /\bps\b/.test(line)) continue;
    found.push(`${d.pid} ${line}`);
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (found.length > 0) log(`left behind and killed: ${found.join('; ')}`);
  return found;
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAll();
    finalSweep();
    process.exit(1);
  },
);
