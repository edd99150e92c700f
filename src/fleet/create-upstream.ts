import type { ServerSpec } from '../manifest/types.js';
import { createRemoteUpstream } from '../upstream/remote.js';
import { createSessionStdioUpstream } from '../upstream/session-stdio.js';
import { createSharedStdioUpstream } from '../upstream/shared-stdio.js';
import type { StdioDeps } from '../upstream/spawn.js';
import type { Upstream } from '../upstream/types.js';

/** The one place that knows which implementation serves which kind of server. */
export function createUpstream(spec: ServerSpec, deps: StdioDeps): Upstream {
  if (spec.kind === 'remote') return createRemoteUpstream(spec, deps.log);
  return spec.isolation === 'session'
    ? createSessionStdioUpstream(spec, deps)
    : createSharedStdioUpstream(spec, deps);
}
