/** Figures → summary rows, verdicts against the issue's targets, and markdown. */
import type { AbandonFigure, IdleServersFigure, ReloadFigure } from './extras.js';
import {
  clientCpuPerCallMs,
  cpuPerCallMs,
  mainCpuPerCallMs,
  type Samples,
  type TargetFigures,
} from './measure.js';
import { median, percentile, ratio, round } from './stats.js';
import type { Target } from './targets.js';

const MB = 1024 * 1024;

export interface Summary {
  id: string;
  label: string;
  note?: string;
  error?: string;
  openP50?: number;
  openN: number;
  seqP50?: number;
  seqP95?: number;
  seqP99?: number;
  seqN: number;
  seqErrors: number;
  seqVsDirect?: number;
  seqVsNative?: number;
  callsPerSecond: Record<number, number | undefined>;
  loadP50: Record<number, number | undefined>;
  cpuMsPerCall?: number;
  clientCpuMsPerCall?: number;
  mainCpuMsPerCall?: number;
  cpuLevel?: number;
  cpsVsDirect?: number;
  cpsVsNative?: number;
  p64KiB?: number;
  p1MiB?: number;
  works64KiB: boolean;
  works1MiB: boolean;
  error1MiB?: string;
  p1MiBVsNative?: number;
  rssIdleMB?: number;
  childRssIdleMB?: number;
  rssLoadMB?: number;
  childRssLoadMB?: number;
  childrenDuring?: number;
  childrenAfter?: number;
  errors: string[];
}

const works = (s: Samples | undefined) => s !== undefined && s.ms.length > 0 && s.errors === 0;

export function summarize(
  targets: { target: Pick<Target, 'id' | 'label' | 'note'>; figures: TargetFigures; error?: string }[],
  levels: readonly number[],
): Summary[] {
  const top = Math.max(...levels);
  const rows: Summary[] = targets.map(({ target, figures, error }) => {
    const f = figures;
    const topLevel = f.levels[top];
    const errors: string[] = [];
    if (error) errors.push(error);
    if (f.open.firstError) errors.push(`open: ${f.open.firstError}`);
    if (f.seq.firstError) errors.push(`echo: ${f.seq.firstError}`);
    for (const [name, s] of Object.entries(f.payload))
      if (s.firstError) errors.push(`${name}: ${s.firstError}`);
    for (const l of Object.values(f.levels)) {
      if (l.firstError) errors.push(`${l.clients} clients: ${l.firstError} (${l.errors} errors)`);
    }
    return {
      id: target.id,
      label: target.label,
      ...(target.note !== undefined && { note: target.note }),
      ...(error !== undefined && { error }),
      openP50: median(f.open.ms),
      openN: f.open.ms.length,
      seqP50: median(f.seq.ms),
      seqP95: percentile(f.seq.ms, 95),
      seqP99: percentile(f.seq.ms, 99),
      seqN: f.seq.ms.length,
      seqErrors: f.seq.errors,
      callsPerSecond: Object.fromEntries(
        levels.map((n) => {
          const l = f.levels[n];
          return [n, l && l.elapsedMs > 0 ? (l.calls / l.elapsedMs) * 1000 : undefined];
        }),
      ),
      loadP50: Object.fromEntries(levels.map((n) => [n, median(f.levels[n]?.latencies ?? [])])),
      ...(topLevel && {
        cpuMsPerCall: cpuPerCallMs(topLevel),
        clientCpuMsPerCall: clientCpuPerCallMs(topLevel),
        ...(topLevel.mainTicks > 0 && { mainCpuMsPerCall: mainCpuPerCallMs(topLevel) }),
        cpuLevel: top,
      }),
      p64KiB: median(f.payload['64KiB']?.ms ?? []),
      p1MiB: median(f.payload['1MiB']?.ms ?? []),
      works64KiB: works(f.payload['64KiB']),
      works1MiB: works(f.payload['1MiB']),
      ...(f.payload['1MiB']?.firstError !== undefined && { error1MiB: f.payload['1MiB'].firstError }),
      ...(f.idle && { rssIdleMB: f.idle.rootRssBytes / MB, childRssIdleMB: f.idle.childRssBytes / MB }),
      ...(topLevel && {
        rssLoadMB: topLevel.rootRssMaxBytes / MB,
        childRssLoadMB: topLevel.childRssMaxBytes / MB,
        childrenDuring: topLevel.childrenDuringMax,
        childrenAfter: topLevel.childrenAfterMax,
      }),
      errors,
    };
  });
  const direct = rows.find((r) => r.id === 'direct');
  const native = rows.find((r) => r.id === 'native');
  for (const r of rows) {
    r.seqVsDirect = ratio(r.seqP50, direct?.seqP50);
    r.seqVsNative = ratio(r.seqP50, native?.seqP50);
    r.cpsVsDirect = ratio(r.callsPerSecond[top], direct?.callsPerSecond[top]);
    r.cpsVsNative = ratio(r.callsPerSecond[top], native?.callsPerSecond[top]);
    r.p1MiBVsNative = ratio(r.p1MiB, native?.p1MiB);
  }
  return rows;
}

export interface Verdict {
  goal: string;
  target: string;
  value: string;
  met: boolean | undefined;
}

export interface Extras {
  idle?: IdleServersFigure;
  reload?: ReloadFigure;
  abandonShared?: AbandonFigure;
  abandonSession?: AbandonFigure;
  errors: string[];
}

const f = (v: number | undefined, digits = 2) => (v === undefined ? '–' : String(round(v, digits)));

/**
 * `floors`: the yardsticks in front of the same native server, those that ran: a raw TCP relay (the floor of
 * an extra hop) and the least passthrough on `node:http` (the floor of a proxy built on it).
 */
export function verdicts(
  rows: Summary[],
  extras: Extras,
  levels: readonly number[],
  floors: { relay?: Summary; http?: Summary } = {},
): Verdict[] {
  const top = Math.max(...levels);
  const by = (id: string) => rows.find((r) => r.id === id);
  const peer = by('mcp-proxy');
  const native = by('native');
  const out: Verdict[] = [];
  const check = (goal: string, target: string, value: string, met: boolean | undefined) =>
    out.push({ goal, target, value, met });
  for (const id of ['proxy-shared', 'proxy-session']) {
    const r = by(id);
    if (!r) continue;
    const cps = ratio(r.callsPerSecond[top], peer?.callsPerSecond[top]);
    check(
      `calls/s @${top} ≥ 2× mcp-proxy`,
      id,
      `${f(r.callsPerSecond[top], 0)} = ${f(cps)}×`,
      cps === undefined ? undefined : cps >= 2,
    );
    const cpu = ratio(r.cpuMsPerCall, peer?.cpuMsPerCall);
    check(
      `CPU/call @${top} ≤ 0.5× mcp-proxy`,
      id,
      `${f(r.cpuMsPerCall, 3)} ms = ${f(cpu)}×`,
      cpu === undefined ? undefined : cpu <= 0.5,
    );
    const seqPeer = ratio(r.seqP50, peer?.seqP50);
    check(
      'echo p50 ≤ 0.6× mcp-proxy',
      id,
      `${f(r.seqP50, 3)} ms = ${f(seqPeer)}×`,
      seqPeer === undefined ? undefined : seqPeer <= 0.6,
    );
    check(
      'echo p50 ≤ 1.2× native',
      id,
      `${f(r.seqVsNative)}×`,
      r.seqVsNative === undefined ? undefined : r.seqVsNative <= 1.2,
    );
  }
  const remote = by('proxy-remote');
  if (remote && native) {
    const added = (r: Summary | undefined) =>
      r?.seqP50 !== undefined && native.seqP50 !== undefined ? r.seqP50 - native.seqP50 : undefined;
    const delta = added(remote);
    const beside = (
      [
        ['a raw TCP relay', floors.relay],
        ['the node:http floor', floors.http],
      ] as const
    ).flatMap(([name, floor]) => {
      const ms = added(floor);
      return ms === undefined ? [] : [`${name}: +${f(ms, 3)} ms`];
    });
    check(
      'remote passthrough p50 ≤ direct HTTP + 0.3 ms',
      'proxy-remote',
      `+${f(delta, 3)} ms${beside.length === 0 ? '' : ` (${beside.join('; ')})`}`,
      delta === undefined ? undefined : delta <= 0.3,
    );
  }
  for (const id of ['proxy-shared', 'proxy-session', 'proxy-remote']) {
    const r = by(id);
    if (!r) continue;
    const met = r.works1MiB && r.p1MiBVsNative !== undefined && r.p1MiBVsNative <= 2;
    check(
      '1 MiB echo works, p50 ≤ 2× native',
      id,
      r.works1MiB ? `${f(r.p1MiB)} ms = ${f(r.p1MiBVsNative)}×` : `fails: ${r.error1MiB}`,
      met,
    );
  }
  const shared = by('proxy-shared');
  if (shared)
    check(
      'shared session open p50 ≤ 5 ms',
      'proxy-shared',
      `${f(shared.openP50)} ms`,
      shared.openP50 === undefined ? undefined : shared.openP50 <= 5,
    );
  if (extras.idle) {
    check(
      `proxy RSS with ${extras.idle.servers} idle servers ≤ 120 MB`,
      'proxy',
      `${f(extras.idle.proxyRssMB, 1)} MB`,
      extras.idle.proxyRssMB <= 120,
    );
  }
  if (extras.reload && extras.reload.overheadMs.length > 0) {
    const overhead = median(extras.reload.overheadMs)!;
    check(
      'manifest write → added server answering ≤ 300 ms + child start',
      'proxy',
      `${f(median(extras.reload.writeToAnswerMs), 0)} ms − child ${f(extras.reload.childStartMs, 0)} ms = ${f(overhead, 0)} ms`,
      overhead <= 300,
    );
  }
  for (const a of [extras.abandonShared, extras.abandonSession]) {
    if (!a) continue;
    const within = a.rssGrowth <= 1.2;
    check(
      `${a.sessions} abandoned sessions (${a.isolation}): RSS within 20%, no leaked children`,
      'proxy',
      `${f(a.rssBeforeMB, 1)} → ${f(a.rssReapedMB, 1)} MB once reaped → ${f(a.rssAfterMB, 1)} MB (${f(a.rssGrowth)}×) ${a.settledInSeconds === undefined ? 'at the end of the idle budget' : `after ${f(a.settledInSeconds, 0)} s idle`}, ${a.leakedChildren} leaked, ${a.sessionsLeft} sessions left`,
      within && a.leakedChildren === 0 && a.sessionsLeft === 0,
    );
  }
  return out;
}

const cell = (v: string) => v.replace(/\|/g, '\\|');

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function markdown(
  rows: Summary[],
  extras: Extras,
  found: Verdict[],
  levels: readonly number[],
  logCost?: string,
): string {
  const top = Math.max(...levels);
  const x = (v: number | undefined) => (v === undefined ? '–' : `${f(v)}×`);
  const latency = table(
    [
      'target',
      'open p50 ms',
      'echo p50 ms',
      'p95',
      'p99',
      'n',
      '×direct',
      '×native',
      '64 KiB p50 ms',
      '1 MiB p50 ms',
      '1 MiB ×native',
    ],
    rows.map((r) => [
      r.label,
      f(r.openP50),
      f(r.seqP50, 3),
      f(r.seqP95, 3),
      f(r.seqP99, 3),
      String(r.seqN),
      x(r.seqVsDirect),
      x(r.seqVsNative),
      r.works64KiB ? f(r.p64KiB) : 'fails',
      r.works1MiB ? f(r.p1MiB) : `fails${r.error1MiB ? ` (${r.error1MiB.slice(0, 60)})` : ''}`,
      x(r.p1MiBVsNative),
    ]),
  );
  const load = table(
    [
      'target',
      ...levels.map((n) => `calls/s @${n}`),
      `@${top} ×direct`,
      `@${top} ×native`,
      `p50 ms @${top}`,
      `CPU ms/call @${top}`,
      'of which main process',
      `client CPU ms/call @${top}`,
      'RSS idle MB',
      `RSS @${top} MB`,
      `children RSS @${top} MB`,
      `children during/after @${top}`,
    ],
    rows.map((r) => [
      r.label,
      ...levels.map((n) => f(r.callsPerSecond[n], 0)),
      x(r.cpsVsDirect),
      x(r.cpsVsNative),
      f(r.loadP50[top]),
      f(r.cpuMsPerCall, 3),
      f(r.mainCpuMsPerCall, 3),
      f(r.clientCpuMsPerCall, 3),
      f(r.rssIdleMB, 1),
      f(r.rssLoadMB, 1),
      f(r.childRssLoadMB, 1),
      r.childrenDuring === undefined ? '–' : `${r.childrenDuring} / ${r.childrenAfter}`,
    ]),
  );
  const notes = rows
    .filter((r) => r.errors.length > 0)
    .map((r) => `- ${r.label}: ${r.errors.join('; ')}`)
    .join('\n');
  const extraLines: string[] = [];
  if (extras.idle) {
    extraLines.push(
      `- ${extras.idle.servers} idle shared servers: proxy RSS ${f(extras.idle.proxyRssMB, 1)} MB (children excluded; ${extras.idle.children} children, ${f(extras.idle.childRssMB, 1)} MB)`,
    );
  }
  if (extras.reload) {
    const r = extras.reload;
    extraLines.push(
      `- reload: manifest write → added server's first echo ${r.writeToAnswerMs.map((v) => f(v, 0)).join(', ')} ms; child start alone ${f(r.childStartMs, 0)} ms (median of ${r.childStartSamples.length}); overhead p50 ${f(median(r.overheadMs), 0)} ms${r.errors.length ? `; errors: ${r.errors.join('; ')}` : ''}`,
    );
  }
  for (const a of [extras.abandonShared, extras.abandonSession]) {
    if (!a) continue;
    extraLines.push(
      `- ${a.opened}/${a.sessions} sessions opened and abandoned (${a.isolation}, ${f(a.openSeconds, 1)} s${a.errors ? `, ${a.errors} errors: ${a.firstError}` : ''}): RSS ${f(a.rssBeforeMB, 1)} → peak ${f(a.rssPeakMB, 1)} → ${f(a.rssReapedMB, 1)} MB once reaped (in ${f(a.reapedInSeconds, 1)} s, ${a.sessionsLeft} left) → ${f(a.rssAfterMB, 1)} MB (${f(a.rssGrowth)}×) ${a.settledInSeconds === undefined ? 'after the whole idle budget' : `after ${f(a.settledInSeconds, 0)} s idle`}; children peak ${a.childrenPeak}, after ${a.childrenAfter}, leaked ${a.leakedChildren}`,
    );
  }
  if (logCost) extraLines.push(`- ${logCost}`);
  for (const e of extras.errors) extraLines.push(`- failed: ${e}`);
  const verdictTable = table(
    ['goal', 'target', 'measured', 'verdict'],
    found.map((v) => [v.goal, v.target, v.value, v.met === undefined ? 'n/a' : v.met ? 'met' : 'MISSED']),
  );
  return [
    '### Latency (one client)',
    '',
    latency,
    '',
    '### Load (each client its own session)',
    '',
    load,
    '',
    ...(notes ? ['Errors:', '', notes, ''] : []),
    '### Reload and memory (this proxy)',
    '',
    extraLines.join('\n'),
    '',
    '### Against the targets of issue 7',
    '',
    verdictTable,
    '',
  ].join('\n');
}
