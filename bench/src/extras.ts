/** This proxy only: RSS with idle servers, reload latency, memory after abandoned sessions. */
import { writeFileSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, openClient } from './clients.js';
import { FIXTURE_MARK } from './paths.js';
import { sampleTree, stop } from './procs.js';
import { del, echoOn, get, openSession } from './raw.js';
import { median } from './stats.js';
import { echoServer, fixtureServer, startProxy, type ProxyProcess } from './targets.js';

const MB = 1024 * 1024;

async function stopProxy(proxy: ProxyProcess): Promise<string[]> {
  const survivors = await stop(proxy.started);
  rmSync(proxy.dir, { recursive: true, force: true });
  return survivors;
}

interface ServerListing {
  name: string;
  sessions: number;
  pids: number[];
  state: string;
}

async function servers(base: string): Promise<ServerListing[]> {
  const answer = await get(`${base}/servers`);
  return (JSON.parse(answer.body) as { servers: ServerListing[] }).servers;
}

/** Runs `task` over `count` items with `concurrency` at a time, until done or `budgetMs` passes. */
async function pool(
  count: number,
  concurrency: number,
  budgetMs: number,
  task: (i: number) => Promise<void>,
) {
  const deadline = performance.now() + budgetMs;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count && performance.now() < deadline) await task(next++);
    }),
  );
  return next;
}

async function waitUntil(check: () => Promise<boolean>, ms: number, every = 100): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(every);
  }
  return false;
}

export interface IdleServersFigure {
  servers: number;
  proxyRssMB: number;
  childRssMB: number;
  children: number;
  survivors: string[];
}

/** A proxy serving `count` shared stdio servers, all started, nobody calling: its own RSS, children excluded. */
export async function idleServers(count: number, settleMs: number): Promise<IdleServersFigure> {
  const list = Object.fromEntries(Array.from({ length: count }, (_, i) => [`echo${i + 1}`, echoServer()]));
  const proxy = await startProxy({ servers: list }, { logLevel: 'warn' });
  try {
    await sleep(settleMs);
    const s = sampleTree([proxy.started.pid], FIXTURE_MARK);
    return {
      servers: count,
      proxyRssMB: s.rootRssBytes / MB,
      childRssMB: s.childRssBytes / MB,
      children: s.fixtureChildren,
      survivors: [],
    };
  } finally {
    const survivors = await stopProxy(proxy);
    if (survivors.length > 0) throw new Error(`idle-servers: left behind ${survivors.join('; ')}`);
  }
}

export interface ReloadFigure {
  /** Fixture start alone (spawn → initialize answered), median. */
  childStartMs: number;
  childStartSamples: number[];
  /** Manifest written → first successful echo on the added server. */
  writeToAnswerMs: number[];
  /** writeToAnswer − child start. */
  overheadMs: number[];
  errors: string[];
}

/**
 * Time from writing a manifest that adds a server to that server's first successful echo, with the proxy
 * watching the file (its default); the added child's own start, measured alone, is subtracted.
 */
export async function reloadFigure(repeats: number): Promise<ReloadFigure> {
  const figure: ReloadFigure = {
    childStartMs: 0,
    childStartSamples: [],
    writeToAnswerMs: [],
    overheadMs: [],
    errors: [],
  };
  for (let i = 0; i < Math.max(3, repeats); i++) {
    const t0 = performance.now();
    const client = await openClient({ kind: 'stdio', ...fixtureServer() });
    figure.childStartSamples.push(performance.now() - t0);
    await client.close();
  }
  figure.childStartMs = median(figure.childStartSamples)!;

  const servers: Record<string, unknown> = { echo: echoServer() };
  const proxy = await startProxy({ servers }, { logLevel: 'warn' });
  try {
    await sleep(500); // the watcher is established after the listening line
    for (let i = 1; i <= repeats; i++) {
      const name = `added${i}`;
      servers[name] = echoServer();
      const url = `${proxy.base}/servers/${name}/mcp`;
      const written = performance.now();
      writeFileSync(proxy.manifestPath, `${JSON.stringify({ servers }, null, 2)}\n`);
      let answered: number | undefined;
      // Polls every 5 ms, for at most 20 s.
      const deadline = written + 20_000;
      while (performance.now() < deadline) {
        try {
          const session = await openSession(url);
          await echoOn(url, session, 'hello');
          answered = performance.now();
          break;
        } catch {
          await sleep(5);
        }
      }
      if (answered === undefined) {
        figure.errors.push(`${name}: no answer within 20 s`);
        continue;
      }
      figure.writeToAnswerMs.push(answered - written);
      figure.overheadMs.push(answered - written - figure.childStartMs);
      await sleep(300);
    }
  } finally {
    const survivors = await stopProxy(proxy);
    if (survivors.length > 0) figure.errors.push(`left behind: ${survivors.join('; ')}`);
  }
  return figure;
}

export interface AbandonFigure {
  isolation: 'shared' | 'session';
  sessions: number;
  opened: number;
  errors: number;
  firstError?: string;
  openSeconds: number;
  rssBeforeMB: number;
  rssPeakMB: number;
  /** Right after every session was reaped. */
  rssReapedMB: number;
  /** After idling until RSS came back within 20% of before, or the settle budget ran out. */
  rssAfterMB: number;
  /** after / before */
  rssGrowth: number;
  reapedInSeconds?: number;
  /** Idle time after reaping until RSS was back within 20% (V8 gives pages back only once it sees the process idle). */
  settledInSeconds?: number;
  sessionsLeft: number;
  /** Fixture processes during the opening, and after reaping. */
  childrenPeak: number;
  childrenAfter: number;
  /** Children beyond what the mode keeps on purpose (shared: its one child). */
  leakedChildren: number;
  survivors: string[];
}

/**
 * Opens `count` sessions (initialize, initialized, one echo) and abandons them (no DELETE), with a short
 * idleTimeout; waits for the proxy to reap them, then compares its RSS with where it started.
 */
export async function abandonFigure(
  isolation: 'shared' | 'session',
  count: number,
  options: {
    concurrency: number;
    budgetMs: number;
    idleTimeout: string;
    /** Quiet time before RSS is read at the start. */
    settleMs: number;
    /** At most this long idle after reaping, waiting for RSS to come back. */
    returnBudgetMs: number;
  },
): Promise<AbandonFigure> {
  const proxy = await startProxy(
    { servers: { echo: echoServer({ isolation, idleTimeout: options.idleTimeout }) } },
    { logLevel: 'warn' },
  );
  const url = `${proxy.base}/servers/echo/mcp`;
  const look = () => sampleTree([proxy.started.pid], FIXTURE_MARK);
  const kept = isolation === 'shared' ? 1 : 0;
  const figure: AbandonFigure = {
    isolation,
    sessions: count,
    opened: 0,
    errors: 0,
    openSeconds: 0,
    rssBeforeMB: 0,
    rssPeakMB: 0,
    rssReapedMB: 0,
    rssAfterMB: 0,
    rssGrowth: 0,
    sessionsLeft: -1,
    childrenPeak: 0,
    childrenAfter: -1,
    leakedChildren: -1,
    survivors: [],
  };
  const reaped = async () => (await servers(proxy.base)).every((s) => s.sessions === 0);
  // Traffic that is not the abandoned sessions (and ends them with DELETE): the proxy is warm before.
  const lightTraffic = async () => {
    for (let i = 0; i < 5; i++) {
      const session = await openSession(url);
      for (let j = 0; j < 40; j++) await echoOn(url, session, 'warm', j + 2);
      await del(url, session);
    }
  };
  try {
    await lightTraffic();
    await waitUntil(async () => (await reaped()) && look().fixtureChildren <= kept, 30_000, 50);
    await sleep(options.settleMs);
    figure.rssBeforeMB = look().rootRssBytes / MB;

    let peakRss = 0;
    let peakChildren = 0;
    const sampler = setInterval(() => {
      const s = look();
      peakRss = Math.max(peakRss, s.rootRssBytes);
      peakChildren = Math.max(peakChildren, s.fixtureChildren);
    }, 250);
    const t0 = performance.now();
    try {
      await pool(count, options.concurrency, options.budgetMs, async () => {
        try {
          const session = await openSession(url);
          await echoOn(url, session, 'abandoned');
          figure.opened++;
        } catch (error) {
          figure.errors++;
          figure.firstError ??= describeError(error);
        }
      });
    } finally {
      clearInterval(sampler);
    }
    figure.openSeconds = (performance.now() - t0) / 1000;
    const s = look();
    figure.rssPeakMB = Math.max(peakRss, s.rootRssBytes) / MB;
    figure.childrenPeak = Math.max(peakChildren, s.fixtureChildren);

    const t1 = performance.now();
    if (await waitUntil(reaped, 90_000, 250)) figure.reapedInSeconds = (performance.now() - t1) / 1000;
    figure.sessionsLeft = (await servers(proxy.base)).reduce((sum, l) => sum + l.sessions, 0);
    await waitUntil(async () => look().fixtureChildren <= kept, 15_000);
    figure.rssReapedMB = look().rootRssBytes / MB;
    // Nothing calls now: V8's memory reducer returns the heap's high-water pages after some idle time.
    const t2 = performance.now();
    if (
      await waitUntil(
        async () => look().rootRssBytes / MB <= figure.rssBeforeMB * 1.2,
        options.returnBudgetMs,
        1000,
      )
    ) {
      figure.settledInSeconds = (performance.now() - t2) / 1000;
    }
    const end = look();
    figure.rssAfterMB = end.rootRssBytes / MB;
    figure.rssGrowth = figure.rssAfterMB / figure.rssBeforeMB;
    figure.childrenAfter = end.fixtureChildren;
    figure.leakedChildren = Math.max(0, end.fixtureChildren - kept);
  } finally {
    figure.survivors = await stopProxy(proxy);
  }
  return figure;
}
