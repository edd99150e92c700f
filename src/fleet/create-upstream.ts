import type { RemoteServerSpec, ServerSpec } from '../manifest/types.js';
import { createRemoteUpstream } from '../upstream/remote.js';
import { createSessionStdioUpstream } from '../upstream/session-stdio.js';
import { createSharedStdioUpstream } from '../upstream/shared-stdio.js';
import type { UpstreamDeps } from '../upstream/types.js';
import type { Upstream } from '../upstream/types.js';
import { workloadIdentity } from '../upstream/workload-identity.js';

/** The one place that knows which implementation serves which kind of server. */
export function createUpstream(spec: ServerSpec, deps: UpstreamDeps): Upstream {
  if (spec.kind === 'remote') {
    return createRemoteUpstream(spec, {
      log: deps.log,
      identityToken: identityToken(spec, deps),
      ...(deps.maxBodyBytes && { maxBodyBytes: deps.maxBodyBytes }),
    });
  }
  return spec.isolation === 'session'
    ? createSessionStdioUpstream(spec, deps)
    : createSharedStdioUpstream(spec, deps);
}

/** For a remote server with `useWorkloadIdentity`: where its bearer tokens come from. */
function identityToken(spec: RemoteServerSpec, deps: UpstreamDeps): (() => Promise<string>) | undefined {
  if (!spec.useWorkloadIdentity) return undefined;
  const { scope } = spec;
  // The loader refuses this combination; the check keeps it from reaching the token endpoint if it ever slips by.
  if (scope === undefined) {
    return () => Promise.reject(new Error('no workload identity token: the server names no scope'));
  }
  const identity = workloadIdentity(deps.env, deps.log);
  return () => identity.token(scope);
}
