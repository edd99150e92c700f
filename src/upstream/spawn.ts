import type { StdioServerSpec } from '../manifest/types.js';
import { spawnStdioChild, type ChildExit, type StdioChild } from './child.js';
import { SessionEndpoint } from '../downstream/session-endpoint.js';
import type { ChannelSource } from './channel.js';
import { childEnvironment } from './environment.js';
import { LineBudget } from './line-budget.js';
import { whyNotRunnable } from './preflight.js';
import type { UpstreamDeps } from './types.js';

/** Starts the child for a stdio server, with its environment policy applied and its output logged. */
export function spawnServerChild(spec: StdioServerSpec, deps: UpstreamDeps): StdioChild {
  const { log } = deps;
  // A child writing in a loop must not flood the proxy's log (docs/decisions/0045-child-output-budget.md).
  const stderr = new LineBudget((lines) => log.warn('child-stderr-suppressed', { server: spec.name, lines }));
  const stdout = new LineBudget((lines) => log.warn('child-stdout-suppressed', { server: spec.name, lines }));
  return spawnStdioChild(
    {
      name: spec.name,
      command: spec.command,
      args: spec.args,
      cwd: spec.cwd,
      env: childEnvironment(spec, deps.env),
    },
    {
      stderr: (server, line) => {
        if (stderr.take()) log.info('child-stderr', { server, line });
      },
      skipped: (server, line) => {
        if (stdout.take()) log.warn('child-stdout-not-jsonrpc', { server, line });
      },
      stdinStuck: (server, queued) =>
        log.warn('child-stdin-stuck', { server, queued, note: 'stopped reading its stdin; stopping it' }),
    },
  );
}

/** Why this server's command could not run here, found without running it; undefined when it looks runnable. */
export function whyServerNotRunnable(spec: StdioServerSpec, deps: UpstreamDeps): string | undefined {
  return whyNotRunnable(spec.command, spec.cwd, childEnvironment(spec, deps.env).PATH);
}

/** The client side of a stdio server: one endpoint, with the server's session limits. */
export function sessionEndpointFor(
  spec: StdioServerSpec,
  deps: UpstreamDeps,
  source: ChannelSource,
): SessionEndpoint {
  return new SessionEndpoint(source, {
    name: spec.name,
    maxSessions: spec.maxSessions,
    idleTimeoutMs: spec.idleTimeoutMs,
    maxBodyBytes: deps.maxBodyBytes,
    log: deps.log,
  });
}

/** "exited with code 1", "killed by SIGSEGV", "could not be started: spawn npx ENOENT" */
export function describeExit(exit: ChildExit): string {
  if (exit.error) return `could not be started: ${exit.error.message}`;
  return describeExitToClient(exit);
}

/**
 * An exit as a client may be told it. A spawn failure's own text names directories and the PATH searched,
 * and what a server wrote to stderr can name hosts and passwords: those are for whoever runs the proxy
 * (its logs, `GET /servers`, which access control restricts), not for every client of the server.
 */
export function describeExitToClient(exit: ChildExit): string {
  if (exit.error) return 'could not be started';
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

/** Where a client is pointed for what it is not told itself (see describeExitToClient). */
export const whereToLook = (server: string) => `see GET /servers/${server} or the proxy's logs`;
