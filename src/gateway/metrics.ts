import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReloadReport, ServerListing } from '../fleet/fleet.js';
import type { UpstreamState } from '../upstream/types.js';

/** What the metrics read of each server at scrape time. */
export type ServerSample = Pick<ServerListing, 'name' | 'sessions' | 'restarts' | 'state'>;

/** One finished MCP request. `server` is the name the request asked for, which may not exist. */
export interface RequestSample {
  server: string;
  method: string;
  status: number;
  seconds: number;
}

/**
 * The label for a name no server answers to: one series for all of them, however many are tried. In
 * parentheses, which no server name may hold, so that a server called `unknown` keeps a series of its own.
 */
export const UNKNOWN_SERVER = '(unknown)';

/**
 * Tool calls run from milliseconds to the default 10-minute timeout: the usual buckets stop at 10 s,
 * which would put every slow call in +Inf.
 */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * How often the event-loop lag metric samples the loop. prom-client's default, 10 ms, wakes an idle proxy a
 * hundred times a second: about a quarter of what an idle proxy spends (11–12 ms of CPU a second against
 * 9 at 100 ms, with 98 wake-ups against 11; perf stat on a 2-core VM). A stall long enough to matter still
 * shows at 100 ms.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

const RELOAD_RESULTS: readonly ReloadReport['result'][] = [
  'applied',
  'unchanged',
  'partial',
  'failed',
  'superseded',
];

const SERVER_STATES: readonly UpstreamState[] = ['starting', 'ready', 'restarting', 'failed', 'stopped'];

/**
 * The proxy's Prometheus metrics, on a registry of its own so that two instances (tests, embedders) never
 * share or collide on series. Label values are bounded: a server label is a name the fleet holds, or
 * `unknown`; methods and statuses are HTTP's own. Per-server gauges are read from the fleet when scraped,
 * so they cannot drift from what `/servers` shows and vanish with the server.
 */
export class Metrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<'server' | 'method' | 'status'>;
  private readonly durations: Histogram<'server' | 'method'>;
  private readonly reloads: Counter<'result'>;

  constructor(
    private readonly servers: () => readonly ServerSample[],
    /** Whether a name is a server of the fleet: cheap, it runs on every request. */
    private readonly isServer: (name: string) => boolean,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    this.requests = new Counter({
      name: 'mcp_proxy_requests_total',
      help: 'MCP requests answered, by server, HTTP method and final HTTP status.',
      labelNames: ['server', 'method', 'status'],
      registers,
    });
    this.durations = new Histogram({
      name: 'mcp_proxy_request_duration_seconds',
      help: 'Time to answer an MCP POST or DELETE. GET streams are not timed: they last as long as a session.',
      labelNames: ['server', 'method'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.reloads = new Counter({
      name: 'mcp_proxy_reloads_total',
      help: 'Manifest reloads, by result: applied, unchanged, partial (some kept their old version), failed.',
      labelNames: ['result'],
      registers,
    });
    // Every result shows from the start, so `increase(...{result="failed"}[5m])` has a series to work on.
    for (const result of RELOAD_RESULTS) this.reloads.inc({ result }, 0);

    const perServer = (read: (s: ServerSample) => number) =>
      function (this: Gauge<'server'>) {
        this.reset(); // a removed server must not linger with its last value
        for (const s of servers()) this.set({ server: s.name }, read(s));
      };
    new Gauge({
      name: 'mcp_proxy_sessions',
      help: 'Client sessions open now, by server (including sessions on versions draining after a reload).',
      labelNames: ['server'],
      collect: perServer((s) => s.sessions),
      registers,
    });
    new Gauge({
      name: 'mcp_proxy_server_state',
      help: "Each server's state, as /servers shows it: 1 for the state it is in, 0 for the others. The one signal of a server that is down: the pod stays ready for the others (decision 0037).",
      labelNames: ['server', 'state'],
      // Every state of every server, so that `...{state="failed"} == 1` has a series to turn on.
      collect(this: Gauge<'server' | 'state'>) {
        this.reset();
        for (const s of servers()) {
          for (const state of SERVER_STATES) this.set({ server: s.name, state }, s.state === state ? 1 : 0);
        }
      },
      registers,
    });
    new Gauge({
      name: 'mcp_proxy_child_restarts',
      help: 'Child restarts of the running version, by server; back to 0 when a reload replaces it.',
      labelNames: ['server'],
      collect: perServer((s) => s.restarts),
      registers,
    });
  }

  /** Counts one finished MCP request; times it unless it was a GET stream. */
  request({ server, method, status, seconds }: RequestSample): void {
    const label = this.isServer(server) ? server : UNKNOWN_SERVER;
    this.requests.inc({ server: label, method, status: String(status) });
    // A GET is the server-to-client stream: its duration is the session's lifetime, not a latency, and
    // would swamp the buckets that matter.
    if (method !== 'GET') this.durations.observe({ server: label, method }, seconds);
  }

  reloaded(result: ReloadReport['result']): void {
    this.reloads.inc({ result });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
