import type { StdioServerSpec } from '../manifest/types.js';
import { spawnStdioChild, type ChildExit, type StdioChild } from './child.js';
import { childEnvironment } from './environment.js';
import type { UpstreamDeps } from './types.js';

/** Starts the child for a stdio server, with its environment policy applied and its output logged. */
export function spawnServerChild(spec: StdioServerSpec, deps: UpstreamDeps): StdioChild {
  const { log } = deps;
  return spawnStdioChild(
    {
      name: spec.name,
      command: spec.command,
      args: spec.args,
      cwd: spec.cwd,
      env: childEnvironment(spec, deps.env),
    },
    {
      stderr: (server, line) => log.info('child-stderr', { server, line }),
      skipped: (server, line) => log.warn('child-stdout-not-jsonrpc', { server, line: line.slice(0, 200) }),
    },
  );
}

/** "exited with code 1", "killed by SIGSEGV", "could not be started: spawn npx ENOENT" */
export function describeExit(exit: ChildExit): string {
  if (exit.error) return `could not be started: ${exit.error.message}`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}
