import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { ServerSpec } from '../manifest/types.js';
import type { UpstreamDeps } from '../upstream/types.js';
import type { StartVerdict, Upstream, UpstreamStatus } from '../upstream/types.js';
import { createUpstream } from './create-upstream.js';
import { DOWN, planReload, type Down, type PlanStep, type ReloadAction } from './plan.js';

export interface ServerListing extends UpstreamStatus {
  description?: string;
  disabled: boolean;
  /** Set when the last reload could not start this server's new version: the previous one still serves. */
  reloadError?: string;
}

/** The outcome of the last change of configuration, for /servers and the logs. */
export interface ReloadReport {
  time: string;
  /**
   * `failed`: nothing changed. `partial`: some new versions did not start and their old ones still serve.
   * `superseded`: a newer manifest came before this one's turn, and is applied instead.
   */
  result: 'applied' | 'unchanged' | 'partial' | 'failed' | 'superseded';
  changes: { name: string; action: ReloadAction; changed: string[] }[];
  errors: string[];
  /** The manifest's warnings, positioned: they do not keep it from being applied. */
  warnings: string[];
}

interface Entry {
  spec: ServerSpec;
  /** Absent while disabled. */
  upstream?: CountedUpstream;
  reloadError?: string;
}

/** A new version and the verdict of its start. */
interface Started {
  upstream: CountedUpstream;
  verdict: StartVerdict;
}

/** How often a draining version is checked for sessions and requests left. */
const DRAIN_POLL_MS = 250;

/**
 * The live upstreams, by name. Requests look a server up here on every call, so what the fleet holds is
 * what is served, and a reload never re-mounts anything. Changes follow Caddy's rule: a new or changed
 * server is started beside the old one and swapped in only once it started; if it cannot start, the old
 * one keeps serving and the failure is reported. Replaced and removed versions keep their open sessions
 * until those end or `drainTimeout` passes.
 */
export class Fleet {
  private entries = new Map<string, Entry>();
  /** Old versions still holding sessions or answering requests, by server name. */
  private readonly draining = new Map<string, Set<CountedUpstream>>();
  /** New versions of the reload under way, until it swaps them in: stop() must reach them too. */
  private readonly starting = new Set<CountedUpstream>();
  /** Of those, the ones a later reload changed or removed again: stopped, and never swapped in. */
  private readonly superseded = new WeakSet<CountedUpstream>();
  private readonly drainTimers = new Set<NodeJS.Timeout>();
  private queue: Promise<unknown> = Promise.resolve();
  private lastReload?: ReloadReport;
  /** Counts the reloads asked for, failed ones included: their order, whatever the clock says. */
  private asked = 0;
  /** The place in that order of the newest manifest asked to be applied. */
  private newestApply = 0;
  /** The place in that order of the reload `lastReload` reports. */
  private lastReloadOrder = 0;
  /** When the manifest being applied now was asked for; undefined between applies. */
  private applyingSince?: Date;
  private stopped = false;

  /** Whether `stop` was called: the fleet serves nothing, and applies nothing, any more. */
  get isStopped(): boolean {
    return this.stopped;
  }

  constructor(
    private readonly deps: UpstreamDeps,
    private readonly log: Logger = deps.log,
  ) {}

  /**
   * Makes the fleet serve `servers`: the first call starts everything, later ones apply the difference.
   * Calls run one after another, in order. Resolves with what was done.
   */
  apply(servers: readonly ServerSpec[], warnings: readonly string[] = []): Promise<ReloadReport> {
    for (const diagnostic of warnings) this.log.warn('manifest-warning', { diagnostic });
    const asked = new Date(); // the report is of the manifest as it was then, however long the queue
    const order = (this.newestApply = ++this.asked);
    this.supersede(servers);
    const run = this.queue.then(() =>
      // Only the newest manifest matters: one that waited behind a slow start while another came after
      // it would only start versions that the next one replaces.
      order < this.newestApply
        ? reportOf(asked, 'superseded')
        : this.applyTracked(servers, asked, order, warnings),
    );
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Stops the new versions still starting that `servers` would restart or remove again. Their reload then
   * keeps what ran before it, and this one, queued behind it, need not wait for an initialize (up to
   * 120 s, for a server that hangs) whose outcome it would only replace: an edit undone, a typo fixed.
   */
  private supersede(servers: readonly ServerSpec[]): void {
    for (const upstream of this.starting) {
      if (this.superseded.has(upstream)) continue;
      const { name } = upstream.spec;
      const [step] = planReload(
        [upstream.spec],
        servers.filter((s) => s.name === name),
      );
      if (step?.action !== 'restart' && step?.action !== 'remove') continue;
      this.superseded.add(upstream);
      this.log.info('server-start-superseded', { server: name, note: 'a later reload changed it again' });
      void upstream.stop();
    }
  }

  /** A reload that failed before anything could be planned (unreadable or invalid manifest). */
  recordFailure(errors: string[]): ReloadReport {
    const report = reportOf(new Date(), 'failed', errors);
    this.record(report, ++this.asked);
    return report;
  }

  /**
   * Keeps the report of the newest reload asked for. A slow apply finishes after a later file failed to
   * load (that failure does not wait for it), and its report must not hide that the file is broken now.
   */
  private record(report: ReloadReport, order: number): void {
    if (order < this.lastReloadOrder) return;
    this.lastReloadOrder = order;
    this.lastReload = report;
  }

  /**
   * The manifest being applied now, if one is: since when (it was asked for), and the servers it still
   * waits for. A slow start holds its report back for up to 120 s; this says meanwhile that it is under way.
   */
  get applying(): { since: string; waitingFor: string[] } | undefined {
    return this.applyingSince && { since: this.applyingSince.toISOString(), waitingFor: this.waitingFor() };
  }

  get lastReloadReport(): ReloadReport | undefined {
    return this.lastReload;
  }

  /**
   * The upstream that serves a request for `name`: the old version that holds `sessionId` while it
   * drains, otherwise the current one.
   */
  route(name: string, sessionId?: string): Upstream | undefined {
    if (sessionId !== undefined) {
      for (const old of this.draining.get(name) ?? []) if (old.owns(sessionId)) return old;
    }
    return this.entries.get(name)?.upstream;
  }

  /** Whether `name` is declared in the manifest being served (enabled or not). */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The spec of `name` as the manifest being served declares it, disabled or not. */
  specOf(name: string): ServerSpec | undefined {
    return this.entries.get(name)?.spec;
  }

  /** The servers whose new versions are still starting (waiting for `initialize`), by name. */
  waitingFor(): string[] {
    return [...this.starting].filter((u) => u.status().state === 'starting').map((u) => u.spec.name);
  }

  list(): ServerListing[] {
    return [...this.entries.values()].map(({ spec, upstream, reloadError }) => {
      const status: UpstreamStatus = upstream?.status() ?? {
        name: spec.name,
        kind: spec.kind,
        state: 'stopped',
        pids: [],
        sessions: 0,
        restarts: 0,
        stderr: [],
      };
      // Sessions and children of draining versions are still this server's.
      for (const old of this.draining.get(spec.name) ?? []) {
        const s = old.status();
        status.pids = [...status.pids, ...s.pids];
        status.sessions += s.sessions;
      }
      return {
        ...status,
        ...(spec.description !== undefined && { description: spec.description }),
        disabled: spec.disabled,
        ...(reloadError !== undefined && { reloadError }),
      };
    });
  }

  /**
   * Client sessions open now across every server, draining versions included: what `list()` sums to,
   * without building the listing. The proxy-wide session cap asks on every request that opens a session.
   */
  sessionCount(): number {
    return this.allVersions().reduce((open, upstream) => open + upstream.sessionCount(), 0);
  }

  /**
   * Stops every version: current, draining, and those a reload is starting (an eager child may take
   * minutes to initialize). A reload under way is abandoned; later ones do nothing.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.drainTimers) clearTimeout(timer);
    const all = [...this.allVersions(), ...this.starting];
    this.draining.clear();
    await Promise.all(all.map((u) => u.stop()));
  }

  /** Every running version: each server's current one and those still draining. */
  private allVersions(): CountedUpstream[] {
    const all = [...this.entries.values()].flatMap((e) => (e.upstream ? [e.upstream] : []));
    for (const set of this.draining.values()) all.push(...set);
    return all;
  }

  private async applyTracked(...args: Parameters<Fleet['applyNow']>): Promise<ReloadReport> {
    this.applyingSince = args[1];
    try {
      return await this.applyNow(...args);
    } finally {
      this.applyingSince = undefined;
    }
  }

  private async applyNow(
    servers: readonly ServerSpec[],
    asked: Date,
    order: number,
    warnings: readonly string[],
  ): Promise<ReloadReport> {
    const report = reportOf(asked, 'applied', [], warnings);
    if (this.stopped) return report;
    const current = [...this.entries.values()].map((e) => e.spec);
    const down = new Map<string, Down>();
    for (const { spec, upstream } of this.entries.values()) {
      // An added version superseded before it started never ran: any reload starts it, as a failed one.
      const state = upstream && this.superseded.has(upstream) ? 'failed' : upstream?.status().state;
      if (state === 'failed' || state === 'stopped') down.set(spec.name, state);
    }
    const steps = planReload(current, servers, down);

    // Start every new version at once, beside what runs now; nothing is swapped before all have answered.
    const started = new Map<string, Started>();
    const starts = await Promise.allSettled(
      steps
        .filter((s) => s.action === 'add' || s.action === 'restart')
        .map(async (s) => {
          const upstream = new CountedUpstream(createUpstream(s.spec!, this.deps));
          this.starting.add(upstream);
          started.set(s.name, { upstream, verdict: await upstream.start() });
        }),
    );
    this.starting.clear();
    const thrown = starts.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (this.stopped || thrown) {
      // Shutdown began while the new versions were starting, or one could not even be made: none is
      // served, and the reload changes nothing.
      await Promise.all([...started.values()].map((s) => s.upstream.stop()));
      if (thrown) throw thrown.reason;
      return report;
    }

    const next = new Map<string, Entry>();
    for (const spec of servers) {
      const old = this.entries.get(spec.name);
      next.set(spec.name, { spec, upstream: spec.disabled ? undefined : old?.upstream });
    }
    for (const step of steps) {
      report.changes.push({ name: step.name, action: step.action, changed: step.changed });
      this.applyStep(step, next, started, report);
    }
    this.entries = next;

    if (steps.every((s) => s.action === 'keep')) report.result = 'unchanged';
    else if (report.errors.length > 0) report.result = 'partial';
    this.record(report, order);
    for (const change of report.changes.filter((c) => c.action !== 'keep')) {
      this.log.info('server-changed', {
        server: change.name,
        action: change.action,
        changed: change.changed,
      });
    }
    return report;
  }

  /** A new version that serves though it could not start (nothing older to fall back on): said, and reported. */
  private startFailed(name: string, reason: string, report: ReloadReport): void {
    this.log.error('server-start-failed', { server: name, reason });
    report.errors.push(`${name}: could not start: ${reason}`);
  }

  private applyStep(
    step: PlanStep,
    next: Map<string, Entry>,
    started: Map<string, Started>,
    report: ReloadReport,
  ): void {
    const old = this.entries.get(step.name);
    const entry = next.get(step.name);
    const fresh = started.get(step.name);
    if (fresh && this.superseded.has(fresh.upstream)) {
      // What ran stays as it was (an added server stays stopped, which is how the next plan finds it):
      // the reload queued behind this one decides what comes next.
      if (old?.upstream) next.set(step.name, { spec: old.spec, upstream: old.upstream });
      else entry!.upstream = fresh.upstream;
      report.changes.at(-1)!.changed.push('superseded');
      return;
    }
    switch (step.action) {
      case 'add':
        // Nothing older to fall back on: the new server is served, and supervised, whatever its start.
        entry!.upstream = fresh!.upstream;
        if (!fresh!.verdict.ok) this.startFailed(step.name, fresh!.verdict.reason, report);
        break;
      case 'restart':
        // A version that had failed or stopped serves no one: the new one replaces it as an added server
        // would, its spec applied, supervised, and reported if it could not start either.
        if (fresh!.verdict.ok || step.changed.some((field) => DOWN.includes(field))) {
          entry!.upstream = fresh!.upstream;
          this.drain(step.name, old!.upstream!, old!.spec.drainTimeoutMs);
          if (!fresh!.verdict.ok) this.startFailed(step.name, fresh!.verdict.reason, report);
        } else {
          // Caddy's rule: the new version failed, so the old one (and its spec) stays.
          void fresh!.upstream.stop();
          const message = `new version could not start: ${fresh!.verdict.reason}; still serving the previous version`;
          next.set(step.name, { spec: old!.spec, upstream: old!.upstream, reloadError: message });
          report.errors.push(`${step.name}: ${message}`);
          this.log.error('reload-kept-previous', { server: step.name, reason: fresh!.verdict.reason });
        }
        break;
      case 'remove':
        if (old?.upstream) this.drain(step.name, old.upstream, old.spec.drainTimeoutMs);
        break;
      case 'update':
        entry!.upstream!.update(step.spec!);
        break;
      case 'keep':
        break;
    }
  }

  /**
   * Keeps an old version for the sessions it holds and the requests it is answering, until they end or
   * `timeoutMs` passes, then stops it.
   */
  private drain(name: string, upstream: CountedUpstream, timeoutMs: number): void {
    const set = this.draining.get(name) ?? new Set();
    set.add(upstream);
    this.draining.set(name, set);
    const deadline = Date.now() + timeoutMs;
    const check = () => {
      this.drainTimers.delete(timer);
      if (upstream.busy && Date.now() < deadline && !this.stopped) {
        timer = setTimeout(check, DRAIN_POLL_MS);
        this.drainTimers.add(timer);
        return;
      }
      set.delete(upstream);
      if (set.size === 0) this.draining.delete(name);
      void upstream.stop();
    };
    let timer = setTimeout(check, 0);
    this.drainTimers.add(timer);
  }
}

/** A report with no changes yet: `time` is when the reload was asked. */
function reportOf(
  time: Date,
  result: ReloadReport['result'],
  errors: string[] = [],
  warnings: readonly string[] = [],
): ReloadReport {
  return { time: time.toISOString(), result, changes: [], errors, warnings: [...warnings] };
}

/**
 * An upstream as the fleet holds it, counting the requests it is answering. A request routed to a version
 * just before a reload swapped in the next one (an initialize whose body is still arriving, say) has no
 * session there yet: a drain that looked at sessions alone would stop the version under it.
 */
class CountedUpstream implements Upstream {
  private answering = 0;

  constructor(private readonly upstream: Upstream) {}

  get spec(): ServerSpec {
    return this.upstream.spec;
  }

  /** Whether stopping it now would cut someone off: it holds sessions, or is answering requests. */
  get busy(): boolean {
    return this.answering > 0 || this.upstream.sessionCount() > 0;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.answering++;
    try {
      await this.upstream.handle(req, res);
    } finally {
      this.answering--;
    }
  }

  start(): Promise<StartVerdict> {
    return this.upstream.start();
  }

  owns(sessionId: string): boolean {
    return this.upstream.owns(sessionId);
  }

  update(spec: ServerSpec): void {
    this.upstream.update(spec);
  }

  stop(): Promise<void> {
    return this.upstream.stop();
  }

  sessionCount(): number {
    return this.upstream.sessionCount();
  }

  status(): UpstreamStatus {
    return this.upstream.status();
  }
}
