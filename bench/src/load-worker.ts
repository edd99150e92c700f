/**
 * A worker thread running some of the concurrent clients, so that the load generator can use more than
 * one core. Each client has its own session and calls echo back to back until the window closes.
 * Protocol with the main thread: ready → go → done → close → closed. Bounded: it gives up if no `go`
 * comes within a minute, and every call has a timeout.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { describeError, echo, openClient, type ClientSpec, type OpenClient } from './clients.js';
import { del, echoOn, openSession } from './raw.js';

// The SDK's HTTP client leaves an abort listener on its transport's signal per call (thousands on a long
// session): Node's warning about it would flood the output.
setMaxListeners(1_000_000);

export interface WorkerInput {
  spec: ClientSpec;
  clients: number;
  text: string;
  /**
   * Bare HTTP clients (node:http, keep-alive) instead of the SDK's, for HTTP targets: the SDK's client costs
   * about 1.5 ms of CPU per call, which on two cores caps every HTTP target near the same rate.
   */
  raw?: boolean;
}

export type FromWorker =
  | { type: 'ready'; pids: number[]; opened: number; openErrors: number; firstError?: string }
  | { type: 'done'; calls: number; errors: number; firstError?: string; latencies: number[] }
  | { type: 'closed' };

export type ToWorker = { type: 'go'; durationMs: number; maxCalls: number } | { type: 'close' };

const { spec, clients: count, text, raw } = workerData as WorkerInput;

/** A bare session: what the loop needs of a client. */
function rawClient(url: string, sessionId: string): OpenClient {
  let id = 2;
  const client = { callTool: () => echoOn(url, sessionId, text, id++) };
  return {
    client: client as unknown as OpenClient['client'],
    close: async () => {
      await del(url, sessionId).catch(() => 0);
    },
  };
}

async function open(): Promise<OpenClient> {
  if (raw && spec.kind === 'http') return rawClient(spec.url, await openSession(spec.url));
  return openClient(spec);
}

const call = (c: OpenClient) =>
  raw && spec.kind === 'http'
    ? (c.client as unknown as { callTool(): Promise<void> }).callTool()
    : echo(c.client, text);
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);

const opened: OpenClient[] = [];
let openErrors = 0;
let firstError: string | undefined;
await Promise.all(
  Array.from({ length: count }, async () => {
    try {
      opened.push(await open());
    } catch (error) {
      openErrors++;
      firstError ??= describeError(error);
    }
  }),
);
post({
  type: 'ready',
  pids: opened.map((c) => c.pid).filter((p): p is number => p !== undefined),
  opened: opened.length,
  openErrors,
  ...(firstError !== undefined && { firstError }),
});

const giveUp = setTimeout(() => void closeAll(), 60_000);

async function run(durationMs: number, maxCalls: number): Promise<void> {
  clearTimeout(giveUp);
  const deadline = performance.now() + durationMs;
  let calls = 0;
  let errors = 0;
  let error: string | undefined;
  const latencies: number[] = [];
  await Promise.all(
    opened.map(async (client) => {
      // Bounded by the window and by maxCalls, whichever ends first.
      while (performance.now() < deadline && calls + errors < maxCalls) {
        const t0 = performance.now();
        try {
          await call(client);
          calls++;
          latencies.push(performance.now() - t0);
        } catch (e) {
          errors++;
          error ??= describeError(e);
        }
      }
    }),
  );
  post({ type: 'done', calls, errors, latencies, ...(error !== undefined && { firstError: error }) });
}

async function closeAll(): Promise<void> {
  clearTimeout(giveUp);
  await Promise.all(opened.map((c) => c.close()));
  post({ type: 'closed' });
  port.close();
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'go') void run(message.durationMs, message.maxCalls);
  else void closeAll();
});
