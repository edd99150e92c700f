import type { RemoteServerSpec, ServerSpec } from '../manifest/types.js';
import { createRemoteUpstream, type BearerTokens } from '../upstream/remote.js';
import { createSessionStdioUpstream } from '../upstream/session-stdio.js';
import { createSharedStdioUpstream } from '../upstream/shared-stdio.js';
import type { UpstreamDeps } from '../upstream/types.js';
import type { Upstream } from '../upstream/types.js';
import { missingIdentityVariables, workloadIdentity } from '../upstream/workload-identity.js';

/** The one place that knows which implementation serves which kind of server. */
export function createUpstream(spec: ServerSpec, deps: UpstreamDeps): Upstream {
  if (spec.kind === 'remote') {
    return createRemoteUpstream(spec, {
      log: deps.log,
      env: deps.env,
      identityTokens: identityTokens(spec, deps),
      ...(deps.maxBodyBytes && { maxBodyBytes: deps.maxBodyBytes }),
    });
  }
  if (spec.useWorkloadIdentity) {
    // The child gets what the proxy has: nothing, and it would only fail later, deep in its own sign-in.
    const missing = missingIdentityVariables(deps.env);
    if (missing.length > 0) {
      deps.log.warn('workload-identity-unset', {
        server: spec.name,
        missing,
        note: "the proxy's environment has no workload identity to give it (is the pod labelled azure.workload.identity/use?)",
      });
    }
  }
  return spec.isolation === 'session'
    ? createSessionStdioUpstream(spec, deps)
    : createSharedStdioUpstream(spec, deps);
}

/** For a remote server with `useWorkloadIdentity`: where its bearer tokens come from. */
function identityTokens(spec: RemoteServerSpec, deps: UpstreamDeps): BearerTokens | undefined {
  if (!spec.useWorkloadIdentity) return undefined;
  const { scope } = spec;
  // The loader refuses this combination; the check keeps it from reaching the token endpoint if it ever slips by.
  if (scope === undefined) {
    return {
      next: () => Promise.reject(new Error('no workload identity token: the server names no scope')),
      refused: () => {},
    };
  }
  const identity = workloadIdentity(deps.env, deps.log);
  return { next: () => identity.token(scope), refused: (token) => identity.refused(scope, token) };
}
