import type { ServerListing } from '../fleet/fleet.js';
import type { Startup } from '../manifest/types.js';

/** One server as readiness sees it: its listing, and how it starts (remote servers have no mode). */
export type ReadinessInput = Pick<ServerListing, 'name' | 'state' | 'disabled'> & {
  startup?: Startup;
};

/**
 * Names and states only: /readyz is open to probes, and a last error can tell commands, paths and
 * hosts. The reasons are in /servers, behind access control when it is on.
 */
export interface NotReady {
  name: string;
  state: ServerListing['state'];
}

export type Readiness = { status: 'ready' } | { status: 'not ready'; servers: NotReady[] };

/**
 * Whether the proxy should be sent traffic: every enabled server that is meant to be up from the start is
 * `ready`. A lazy server starts on first use, so holding the whole proxy back for it would defeat the
 * point; a disabled one is not served at all. Remote servers have no startup mode: they count like eager
 * ones, ready once their state says so.
 */
export function readiness(servers: readonly ReadinessInput[]): Readiness {
  const waiting = servers
    .filter((s) => !s.disabled && s.startup !== 'lazy' && s.state !== 'ready')
    .map(({ name, state }) => ({ name, state }));
  return waiting.length === 0 ? { status: 'ready' } : { status: 'not ready', servers: waiting };
}
