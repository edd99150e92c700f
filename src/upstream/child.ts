/**
 * One stdio MCP server process: newline-delimited JSON-RPC on its stdin and stdout, stderr kept for people.
 * Peers that spawn through a shell, or signal only the process they started, leave orphans behind
 * (FIELD-NOTES, "How peers fail"); so a child is spawned without a shell as the leader of its own process
 * group, and it is always the group that is signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, errorResponse, isJsonRpcMessage } from './jsonrpc.js';
import { CARRIAGE_RETURN, framed, NEWLINE, parsedFrom } from './message-text.js';
import { idOfOverlongAnswer, OVERLONG_END_BYTES } from './overlong-answer.js';
import { whyNotRunnable } from './preflight.js';

export interface StdioChildOptions {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** How long the group has between SIGTERM and SIGKILL. Default 3000. */
  stopGraceMs?: number;
  /** Queued for stdin and not taken by the child, past which it counts as stuck. Default MAX_QUEUED_STDIN. */
  maxQueuedStdin?: number;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when it could not be spawned at all, e.g. ENOENT. */
  error?: Error;
}

export interface StdioChild {
  /** Also the id of its process group. Undefined when it could not be spawned. */
  readonly pid: number | undefined;
  /**
   * Writes one JSON-RPC message as a line to stdin; the lines of one turn of the event loop leave together.
   * Silently drops after exit, and once the child was found stuck.
   */
  send(message: JSONRPCMessage): void;
  /** One per stdout line that parses as JSON-RPC. */
  onmessage?: (message: JSONRPCMessage) => void;
  /**
   * Exactly once, also for spawn failure (asynchronously). Comes after the last `onmessage`, once stdout
   * has closed, and when it comes no process of the group is alive any more.
   */
  onexit?: (exit: ChildExit) => void;
  /** Last stderr lines (at most 200, each clipped to MAX_LOGGED_LINE_BYTES), oldest first. */
  stderrTail(): string[];
  /** TERM to the whole process group, KILL to the group after stopGraceMs; resolves once exited. Idempotent. */
  stop(): Promise<void>;
}

export interface ChildLog {
  /** A stderr line, clipped to MAX_LOGGED_LINE_BYTES. */
  stderr(server: string, line: string): void;
  /** A stdout line that is not JSON-RPC (clipped likewise), or a note that an over-long one was dropped. */
  skipped(server: string, line: string): void;
  /** More than the bound (`queued` characters) waited for the child's stdin: it is being stopped. */
  stdinStuck(server: string, queued: number): void;
}

/**
 * The longest stdout line (one message) accepted. Tool arguments and results of several MiB are normal;
 * past this a line is dropped rather than buffered, so one server cannot exhaust the proxy's memory.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/**
 * How much may wait for a child's stdin, in characters of the queued JSON, before the child counts as stuck.
 * A child that reads takes its input as it comes (the pipe holds 64 KiB); past this it has stopped reading,
 * and every further request would only grow the proxy's memory. Generous: 16 request bodies at the default
 * `limits.maxBodyBytes`. A message always goes out when less than this is queued, however large it is.
 */
const MAX_QUEUED_STDIN = 64 * 1024 * 1024;
/** stderr is read by people: a longer line is a dump, not a diagnosis, and is dropped. */
const MAX_STDERR_LINE_BYTES = 64 * 1024;
/**
 * The most of one line that is logged or kept in the stderr tail: enough for any message and the start of
 * a dump, while 200 kept lines stay under a MiB and a log line stays one screen.
 */
export const MAX_LOGGED_LINE_BYTES = 4096;
const STDERR_TAIL_LINES = 200;
const DEFAULT_STOP_GRACE_MS = 3000;
/** After the group's KILL, how long stdout may take to report closed before it is cut. */
const CLOSE_SLACK_MS = 500;

/** Process groups spawned and not yet swept. */
const liveGroups = new Set<number>();

// Runs on process.exit(), on the event loop running dry and on an uncaught exception alike; only synchronous
// work is possible there, and SIGKILL needs nothing from the child. Nothing runs when the proxy is killed by a
// signal it does not handle: whoever owns the process's signals must turn them into an exit.
process.on('exit', () => {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
});

/** Pids (= process group ids) of the children that have not reported their exit yet. */
export function liveChildPids(): number[] {
  return [...liveGroups];
}

export function spawnStdioChild(options: StdioChildOptions, log: ChildLog): StdioChild {
  let proc: ChildProcess;
  try {
    proc = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      shell: false,
      detached: true,
      stdio: 'pipe',
    });
  } catch (error) {
    // Bad arguments (a NUL byte) and some errnos (E2BIG) throw instead of emitting 'error'.
    return failedChild(error instanceof Error ? error : new Error(String(error)));
  }

  const { name } = options;
  const graceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  const maxQueued = options.maxQueuedStdin ?? MAX_QUEUED_STDIN;
  const pid = proc.pid;
  if (pid !== undefined) liveGroups.add(pid);
  const tail: string[] = [];
  let leaderExit: ChildExit | undefined;
  let finished = false;
  let killTimer: NodeJS.Timeout | undefined;
  let closeTimer: NodeJS.Timeout | undefined;
  let markDone = () => {};
  const done = new Promise<void>((resolve) => (markDone = resolve));
  /** stdin is corked until the end of this turn of the event loop. */
  let batching = false;
  const endBatch = () => {
    batching = false;
    proc.stdin?.uncork();
  };

  const child: StdioChild = {
    pid,
    send(message) {
      const stdin = proc.stdin;
      // A destroyed stdin (EPIPE, or found stuck) is not writable: nothing is written, nothing thrown.
      if (leaderExit || finished || !stdin?.writable) return;
      if (stdin.writableLength > maxQueued) return stopStuck(stdin.writableLength);
      // One writev per turn of the event loop: the requests of many clients cost one syscall and wake the
      // child once. setImmediate, not nextTick: every request arrives in an I/O callback of its own, and
      // nextTick would flush after each one.
      if (!batching) {
        batching = true;
        stdin.cork();
        setImmediate(endBatch);
      }
      for (const piece of framed('', message, '\n')) stdin.write(piece);
    },
    stderrTail: () => [...tail],
    stop() {
      terminate();
      return done;
    },
  };

  function terminate() {
    if (pid === undefined || killTimer !== undefined || finished) return;
    signalGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => {
      signalGroup(pid, 'SIGKILL');
      // Also the leader by pid, should it have moved itself to another group: stop() must always end.
      proc.kill('SIGKILL');
    }, graceMs);
  }

  /**
   * A child that does not read its stdin is as good as hung: it is stopped like on stop(), so that its
   * exit is reported and the restart policy applies, and what was queued for it is dropped at once.
   */
  function stopStuck(queued: number) {
    log.stdinStuck(name, queued);
    proc.stdin?.destroy();
    terminate();
  }

  function finish(exit: ChildExit) {
    if (finished) return;
    finished = true;
    clearTimeout(killTimer);
    clearTimeout(closeTimer);
    if (pid !== undefined) {
      // Whatever is left of the group can no longer talk to the proxy: no orphans.
      signalGroup(pid, 'SIGKILL');
      liveGroups.delete(pid);
    }
    child.onexit?.(exit);
    markDone();
  }

  const stdout = new LineSplitter(
    MAX_MESSAGE_BYTES,
    (bytes) => {
      if (bytes.length === 0) return;
      const message = parseMessage(bytes.toString('utf8'), bytes);
      if (message) child.onmessage?.(message);
      else log.skipped(name, clipped(bytes));
    },
    () => log.skipped(name, `[a stdout line longer than ${MAX_MESSAGE_BYTES} bytes was dropped]`),
    (head, tail) => {
      const id = idOfOverlongAnswer(head.toString('utf8'), tail.toString('utf8'));
      if (id === undefined) return;
      // Answered in the child's place: its call fails now, saying why, instead of timing out.
      const why = `the server's answer was longer than ${MAX_MESSAGE_BYTES} bytes, the most taken from a stdio server`;
      child.onmessage?.(errorResponse(id, ErrorCode.InternalError, why));
    },
  );
  const record = (line: string) => {
    tail.push(line);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
    log.stderr(name, line);
  };
  const stderr = new LineSplitter(
    MAX_STDERR_LINE_BYTES,
    (bytes) => record(clipped(bytes)),
    () => record(`[a stderr line longer than ${MAX_STDERR_LINE_BYTES} bytes was dropped]`),
  );

  // The streams are null only when spawning failed with EMFILE or ENFILE.
  proc.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  proc.stdout?.on('end', () => stdout.end());
  proc.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  proc.stderr?.on('end', () => stderr.end());
  // EPIPE on stdin once the child stops reading, like any pipe error, ends in the exit that gets reported.
  for (const stream of [proc.stdin, proc.stdout, proc.stderr]) stream?.on('error', () => {});

  proc.on('error', (error) => {
    // Only a failed spawn leaves no pid; a later 'error' (a signal that could not be sent) changes nothing
    // that the exit will not report.
    if (pid === undefined) finish({ code: null, signal: null, error: explainSpawnError(error, options) });
  });
  proc.on('exit', (code, signal) => {
    const exit = { code, signal };
    leaderExit = exit;
    // The rest of the group lost its leader: it gets the same TERM, grace and KILL as on stop().
    terminate();
    // stdout closes once every holder of the pipe is gone; one that left the group could hold it forever.
    closeTimer = setTimeout(() => {
      proc.stdout?.destroy();
      proc.stderr?.destroy();
      finish(exit);
    }, graceMs + CLOSE_SLACK_MS);
  });
  // 'close' comes after 'exit' and after stdout and stderr have ended, so every line has been delivered.
  proc.on('close', (code, signal) => finish(leaderExit ?? { code, signal }));

  return child;
}

/** A child that never started: it reports so asynchronously, like a spawn that fails with ENOENT. */
function failedChild(error: Error): StdioChild {
  const child: StdioChild = {
    pid: undefined,
    send() {},
    stderrTail: () => [],
    stop: () => reported,
  };
  const reported = new Promise<void>((resolve) =>
    process.nextTick(() => {
      child.onexit?.({ code: null, signal: null, error });
      resolve();
    }),
  );
  return child;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: every process of the group is gone already.
  }
}

/** Node says "spawn x ENOENT" for a missing command and for a missing cwd alike: say which, and where it looked. */
function explainSpawnError(error: Error, { command, cwd, env }: StdioChildOptions): Error {
  const code = (error as NodeJS.ErrnoException).code;
  let message = error.message;
  if (code === 'ENOENT') message = whyNotRunnable(command, cwd, env.PATH) ?? message;
  else if (code === 'EACCES') message = `permission denied running ${command} in ${cwd}`;
  return new Error(message, { cause: error });
}

/** A line as people read it: at most its first MAX_LOGGED_LINE_BYTES, and how much was cut after them. */
function clipped(bytes: Buffer): string {
  if (bytes.length <= MAX_LOGGED_LINE_BYTES) return bytes.toString('utf8');
  let end = MAX_LOGGED_LINE_BYTES;
  // Back to the start of a character, rather than cutting one in two (a UTF-8 continuation byte is 10xxxxxx).
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return `${bytes.toString('utf8', 0, end)}… [${bytes.length - end} more bytes cut]`;
}

function parseMessage(line: string, bytes: Buffer): JSONRPCMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isJsonRpcMessage(value)) return undefined;
  parsedFrom(value, line, bytes);
  return value;
}

/**
 * Splits a byte stream into lines of bytes on '\n', dropping a '\r' before it. A line that arrives in many
 * chunks is joined once, when its end arrives, so a large message costs one copy rather than one per chunk.
 * '\n' never occurs inside a UTF-8 multi-byte sequence, so splitting bytes before decoding is safe.
 */
class LineSplitter {
  private parts: Buffer[] = [];
  private bytes = 0;
  /** Dropping the rest of a line that went past maxBytes. */
  private overlong = false;
  /** The first and the last OVERLONG_END_BYTES of the line being dropped, kept for onDropped. */
  private head: Buffer = EMPTY;
  private tail: Buffer = EMPTY;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: Buffer) => void,
    /** A line went past maxBytes: the rest of it is dropped as it comes. */
    private readonly onOverlong: () => void,
    /** That line has ended; its first and last bytes tell what it was. */
    private readonly onDropped?: (head: Buffer, tail: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      this.add(chunk.subarray(start, end));
      this.endLine();
      start = end + 1;
    }
    if (start < chunk.length) this.add(chunk.subarray(start));
  }

  /** The stream ended: a last line without '\n' still counts. */
  end(): void {
    if (this.parts.length > 0 || this.overlong) this.endLine();
  }

  private add(part: Buffer): void {
    if (this.overlong) {
      if (this.onDropped) this.tail = lastBytes(Buffer.concat([this.tail, lastBytes(part)]));
      return;
    }
    if (this.bytes + part.length > this.maxBytes) {
      this.overlong = true;
      if (this.onDropped) {
        this.head = firstBytes([...this.parts, part]);
        this.tail = lastBytes(part);
      }
      this.parts = [];
      this.bytes = 0;
      this.onOverlong();
      return;
    }
    this.parts.push(part);
    this.bytes += part.length;
  }

  private endLine(): void {
    if (this.overlong) {
      this.overlong = false;
      this.onDropped?.(this.head, this.tail);
      this.head = this.tail = EMPTY;
      return;
    }
    let line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    if (line[line.length - 1] === CARRIAGE_RETURN) line = line.subarray(0, -1);
    this.onLine(line);
  }
}

const EMPTY = Buffer.alloc(0);

/** The first OVERLONG_END_BYTES of what `parts` hold together, copying no more than that. */
function firstBytes(parts: Buffer[]): Buffer {
  const taken: Buffer[] = [];
  let size = 0;
  for (const part of parts) {
    if (size >= OVERLONG_END_BYTES) break;
    taken.push(part);
    size += part.length;
  }
  return Buffer.concat(taken, Math.min(size, OVERLONG_END_BYTES));
}

/** The last OVERLONG_END_BYTES of `bytes` (a view, not a copy). */
const lastBytes = (bytes: Buffer): Buffer => bytes.subarray(Math.max(0, bytes.length - OVERLONG_END_BYTES));
