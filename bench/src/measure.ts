/** The per-target phases: session open, sequential echo, payloads, concurrent clients. */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, echo, openClient, withTimeout, type OpenClient } from './clients.js';
import type { FromWorker, ToWorker, WorkerInput } from './load-worker.js';
import { FIXTURE_MARK } from './paths.js';
import { CLOCK_TICKS, isAlive, readStat, sampleTree, track } from './procs.js';
import type { Target } from './targets.js';

export interface Samples {
  ms: number[];
  errors: number;
  firstError?: string;
}

export interface LevelFigures {
  clients: number;
  opened: number;
  openErrors: number;
  calls: number;
  errors: number;
  firstError?: string;
  /** Wall time of the measured windows, summed over rounds. */
  elapsedMs: number;
  /** CPU ticks of the target's process tree over the windows. */
  ticks: number;
  /** CPU ticks of the target's main process alone (the proxy without its children). */
  mainTicks: number;
  /** CPU of the bench itself (the SDK clients, all threads) over the windows, µs. */
  clientCpuUs: number;
  latencies: number[];
  rootRssMaxBytes: number;
  childRssMaxBytes: number;
  childrenDuringMax: number;
  childrenAfterMax: number;
}

export interface TargetFigures {
  open: Samples;
  seq: Samples;
  payload: Record<string, Samples>;
  levels: Record<number, LevelFigures>;
  idle?: { rootRssBytes: number; childRssBytes: number; children: number };
}

export const emptySamples = (): Samples => ({ ms: [], errors: 0 });

export function emptyFigures(): TargetFigures {
  return { open: emptySamples(), seq: emptySamples(), payload: {}, levels: {} };
}

function fail(samples: Samples, error: unknown): void {
  samples.errors++;
  samples.firstError ??= describeError(error);
}

/** Fresh client, connect (initialize + initialized), timed; then closed, untimed. */
export async function measureOpen(target: Target, samples: Samples, count: number, budgetMs: number) {
  const deadline = performance.now() + budgetMs;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    try {
      const client = await openClient(target.client);
      samples.ms.push(performance.now() - t0);
      await client.close();
    } catch (error) {
      fail(samples, error);
      if (samples.errors >= 3) return; // it does not work: say so rather than retry
    }
  }
}

/**
 * One target's sequential echo: timed calls one after another on one session, made a block at a time, until
 * `count` are made, `budgetMs` is spent (opening sessions included) or the third error. A long run changes
 * session every 1,000 calls (untimed), because the SDK's client keeps an abort listener per call on its
 * session.
 */
class SequentialRun {
  private done = 0;
  private spentMs = 0;
  private onSession = 0;
  private client: OpenClient | undefined;
  /** It failed for good: a size refused, a session that would not open, or three errors. */
  private gaveUp = false;

  constructor(
    private readonly target: Target,
    private readonly samples: Samples,
    private readonly count: number,
    private readonly budgetMs: number,
    private readonly text: string,
    /** Untimed calls on the first session before the timed ones. */
    private warm: number,
  ) {}

  get finished(): boolean {
    return this.gaveUp || this.done >= this.count || this.spentMs >= this.budgetMs;
  }

  /** Up to `calls` more timed calls. */
  async block(calls: number): Promise<void> {
    const t0 = performance.now();
    const deadline = t0 + this.budgetMs - this.spentMs;
    try {
      for (let i = 0; i < calls && this.done < this.count && performance.now() < deadline; i++) {
        if (this.onSession === 1000) await this.close();
        if (!this.client) {
          this.client = await openClient(this.target.client);
          this.onSession = 0;
        }
        for (; this.warm > 0 && performance.now() < deadline; this.warm--) {
          await echo(this.client.client, this.text);
        }
        this.onSession++;
        this.done++;
        const c0 = performance.now();
        try {
          await echo(this.client.client, this.text);
          this.samples.ms.push(performance.now() - c0);
        } catch (error) {
          fail(this.samples, error);
          if (this.samples.errors >= 3) {
            this.gaveUp = true;
            return;
          }
        }
      }
    } catch (error) {
      // The session would not open, or an untimed call failed: a size refused once does not work, and that
      // is the figure.
      fail(this.samples, error);
      this.gaveUp = true;
    } finally {
      this.spentMs += performance.now() - t0;
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }
}

/** `count` echo calls one after another on one target (see SequentialRun). */
export async function measureSequential(
  target: Target,
  samples: Samples,
  count: number,
  budgetMs: number,
  text = 'hello',
  /** Untimed calls on the first session before the timed ones. */
  warmCalls = 0,
) {
  const run = new SequentialRun(target, samples, count, budgetMs, text, warmCalls);
  try {
    while (!run.finished) await run.block(count);
  } finally {
    await run.close();
  }
}

/**
 * Sequential echo on several targets, interleaved in blocks of `blockCalls`: each target keeps its session
 * and makes a block of calls, then the next target does, in alternating order, until every one is done.
 * On this VM one target's p50 moved by up to 0.6 ms from one round to the next; interleaved this finely,
 * such drift falls on every target alike, and a difference of a tenth of a millisecond between two targets
 * (the remote passthrough against the same upstream called directly) can be read.
 */
export async function measureSequentialInterleaved(
  runs: { target: Target; samples: Samples }[],
  count: number,
  budgetMs: number,
  blockCalls: number,
) {
  const all = runs.map((r) => new SequentialRun(r.target, r.samples, count, budgetMs, 'hello', 0));
  try {
    let live = all;
    for (let block = 0; live.length > 0; block++) {
      for (const run of block % 2 === 0 ? live : [...live].reverse()) await run.block(blockCalls);
      live = live.filter((run) => !run.finished);
    }
  } finally {
    await Promise.all(all.map((run) => run.close()));
  }
}

/**
 * V8 needs thousands of calls before the hot paths of an SDK-based server are optimized (measured on the
 * proxy: ~3,000 sequential calls before its CPU per call stops falling, from 590 to 340 µs on the main
 * thread, plus compiler threads): every target gets the same warm-up, over a few sessions at once.
 */
export async function warmUp(target: Target, calls: number, sessions = 4): Promise<void> {
  const clients = await Promise.all(Array.from({ length: sessions }, () => openClient(target.client)));
  try {
    const deadline = performance.now() + 30_000;
    await Promise.all(
      clients.map(async ({ client }) => {
        for (let i = 0; i < Math.ceil(calls / sessions) && performance.now() < deadline; i++) {
          await echo(client, 'warm-up');
        }
      }),
    );
    await echo(clients[0]!.client, 'x'.repeat(64 * 1024));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

export const PAYLOADS: Record<string, number> = { '64KiB': 64 * 1024, '1MiB': 1024 * 1024 };

/**
 * The payload sizes, each on its own session. Large messages take paths of their own (and make the heap
 * grow to hold them): the first 1 MiB calls of a target already warmed with small ones took up to twice as
 * long as later ones, on every HTTP target. So the first time a size is measured, `warmCalls` untimed
 * calls go first; they are made here rather than in the warm-up so that idle RSS is read before them.
 */
export async function measurePayloads(
  target: Target,
  figures: TargetFigures,
  counts: Record<string, number>,
  budgetMs: number,
  warmCalls: number,
) {
  for (const [name, bytes] of Object.entries(PAYLOADS)) {
    const samples = (figures.payload[name] ??= emptySamples());
    // A size that failed once (413, say) is not tried again: it does not work, and that is the figure.
    if (samples.errors > 0) continue;
    const warm = samples.ms.length === 0 ? warmCalls : 0;
    await measureSequential(target, samples, counts[name] ?? 1, budgetMs, 'x'.repeat(bytes), warm);
  }
}

function newLevel(clients: number): LevelFigures {
  return {
    clients,
    opened: 0,
    openErrors: 0,
    calls: 0,
    errors: 0,
    elapsedMs: 0,
    ticks: 0,
    mainTicks: 0,
    clientCpuUs: 0,
    latencies: [],
    rootRssMaxBytes: 0,
    childRssMaxBytes: 0,
    childrenDuringMax: 0,
    childrenAfterMax: 0,
  };
}

interface Running {
  worker: Worker;
  next(type: FromWorker['type'], ms: number): Promise<FromWorker>;
}

function startWorker(input: WorkerInput): Running {
  const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: input });
  const inbox: FromWorker[] = [];
  const waiting: (() => void)[] = [];
  let failure: Error | undefined;
  worker.on('message', (m: FromWorker) => {
    inbox.push(m);
    waiting.splice(0).forEach((w) => w());
  });
  worker.on('error', (error) => {
    failure = error;
    waiting.splice(0).forEach((w) => w());
  });
  return {
    worker,
    async next(type, ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const index = inbox.findIndex((m) => m.type === type);
        if (index !== -1) return inbox.splice(index, 1)[0]!;
        if (failure) throw failure;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`worker sent no ${type} within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 1000));
          waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}

/**
 * `clients` concurrent clients, each its own session, spread over worker threads; echo back to back for
 * `durationMs`. CPU of the target's process tree from /proc before and after; RSS and children sampled.
 */
export async function measureConcurrent(
  target: Target,
  figures: TargetFigures,
  clients: number,
  durationMs: number,
  options: {
    workers: number;
    maxCalls: number;
    afterMs?: number;
    raw?: boolean;
    /** Told the measured window, in µs of CLOCK_MONOTONIC (the clock of V8's CPU profiles). */
    onWindow?: (startUs: number, endUs: number) => void;
    /** Called as the window opens (after every session is open), and as it closes. */
    onGo?: () => void;
    onDone?: () => void;
  },
): Promise<void> {
  const level = (figures.levels[clients] ??= newLevel(clients));
  const count = Math.max(1, Math.min(options.workers, clients));
  const workers = Array.from({ length: count }, (_, i) =>
    startWorker({
      spec: target.client,
      clients: Math.floor(clients / count) + (i < clients % count ? 1 : 0),
      text: 'hello',
      ...(options.raw && { raw: true }),
    }),
  );
  const roots: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    for (const w of workers) {
      const ready = (await w.next('ready', 120_000)) as Extract<FromWorker, { type: 'ready' }>;
      level.opened += ready.opened;
      level.openErrors += ready.openErrors;
      if (ready.firstError !== undefined) level.firstError ??= `open: ${ready.firstError}`;
      roots.push(...ready.pids);
    }
    if (target.main) roots.push(target.main.pid, ...target.alsoMeasured.map((s) => s.pid));
    const look = () => {
      const s = sampleTree(roots, FIXTURE_MARK);
      // Direct stdio: the roots are the fixtures themselves.
      const children = target.main ? s.fixtureChildren : roots.filter(isAlive).length;
      level.rootRssMaxBytes = Math.max(level.rootRssMaxBytes, target.main ? s.rootRssBytes : 0);
      level.childRssMaxBytes = Math.max(
        level.childRssMaxBytes,
        target.main ? s.childRssBytes : s.rootRssBytes + s.childRssBytes,
      );
      level.childrenDuringMax = Math.max(level.childrenDuringMax, children);
      if (target.main) track(target.main);
      return s;
    };
    const before = look();
    sampler = setInterval(look, 200);
    options.onGo?.();
    const main0 = target.main ? (readStat(target.main.pid)?.ownTicks ?? 0) : 0;
    const cpu0 = process.cpuUsage();
    const mono0 = process.hrtime.bigint();
    const t0 = performance.now();
    const go: ToWorker = { type: 'go', durationMs, maxCalls: options.maxCalls };
    for (const w of workers) w.worker.postMessage(go);
    for (const w of workers) {
      const done = (await w.next('done', durationMs + 90_000)) as Extract<FromWorker, { type: 'done' }>;
      level.calls += done.calls;
      level.errors += done.errors;
      if (done.firstError !== undefined) level.firstError ??= done.firstError;
      // Enough for percentiles; a 5 s window at thousands of calls/s stays bounded.
      level.latencies.push(...done.latencies.slice(0, 20_000));
    }
    const elapsed = performance.now() - t0;
    options.onDone?.();
    options.onWindow?.(Number(mono0 / 1000n), Number(process.hrtime.bigint() / 1000n));
    const cpu = process.cpuUsage(cpu0);
    const main1 = target.main ? (readStat(target.main.pid)?.ownTicks ?? 0) : 0;
    const after = look();
    clearInterval(sampler);
    sampler = undefined;
    level.elapsedMs += elapsed;
    level.ticks += after.ticks - before.ticks;
    level.clientCpuUs += cpu.user + cpu.system;
    level.mainTicks += main1 - main0;
  } catch (error) {
    level.firstError ??= describeError(error);
  } finally {
    clearInterval(sampler);
    for (const w of workers) w.worker.postMessage({ type: 'close' } satisfies ToWorker);
    await Promise.all(workers.map((w) => w.next('closed', 30_000).catch(() => undefined)));
    await Promise.all(workers.map((w) => withTimeout(w.worker.terminate(), 5000).catch(() => 0)));
  }
  // Children still alive once every client has ended its session (DELETE, or closed stdio).
  await sleep(options.afterMs ?? 1500);
  const s = sampleTree(target.main ? [target.main.pid] : roots, FIXTURE_MARK);
  const afterChildren = target.main ? s.fixtureChildren : roots.filter(isAlive).length;
  level.childrenAfterMax = Math.max(level.childrenAfterMax, afterChildren);
}

/** ms of CPU per call, from ticks. */
export const cpuPerCallMs = (level: LevelFigures) =>
  level.calls > 0 ? ((level.ticks / CLOCK_TICKS) * 1000) / level.calls : undefined;

/** ms of the bench's own CPU (the clients) per call. */
export const clientCpuPerCallMs = (level: LevelFigures) =>
  level.calls > 0 ? level.clientCpuUs / 1000 / level.calls : undefined;

/** ms of CPU per call in the target's main process alone (for a proxy: without its children). */
export const mainCpuPerCallMs = (level: LevelFigures) =>
  level.calls > 0 ? ((level.mainTicks / CLOCK_TICKS) * 1000) / level.calls : undefined;
