/**
 * The proxy's own Azure workload identity, presented to remote servers as bearer tokens.
 *
 * Tokens come from @azure/identity's WorkloadIdentityCredential (MSAL underneath). Its getToken keeps each
 * scope's token in memory and goes back to the token endpoint only once less than 5 minutes of the token
 * remain, or once the `refresh_in` the endpoint sent has passed (that call still returns the old token; the
 * next one gets the new). It does not coalesce calls: concurrent calls that find no usable token each fetch
 * one, so here callers share the call in progress for their scope. Nor can a caller tell it to skip its
 * cache (only a claims challenge does, and that asks the endpoint for something else), so a token that an
 * upstream refuses is dropped by replacing the credential: each scope has one of its own.
 *
 * A failed fetch replaces the credential too. MSAL keeps a scope that met a 429 or 5xx throttled in its
 * cache, refusing it without asking the endpoint for 60 s, or for as long as a Retry-After says (up to an
 * hour): a server stayed down that long after its token endpoint recovered, and reloads could not help.
 * The proxy's own backoff replaces it: a failure is repeated to callers for FAILURE_HOLD_MS, then the next
 * caller tries again on a new credential. Meanwhile a token still good for a while serves on.
 *
 * Every setting the credential takes as an option is passed from the environment given, so the library
 * never falls back to process.env for them. What it still reads from process.env, with no option to
 * override: AZURE_REGIONAL_AUTHORITY_NAME, MSAL_FORCE_REGION, REGION_NAME (regional token endpoints),
 * AZURE_IDENTITY_DISABLE_MULTITENANTAUTH (moot: no tenant is asked for per call), HTTPS_PROXY, HTTP_PROXY,
 * ALL_PROXY, NO_PROXY (outbound proxy), AZURE_LOG_LEVEL and DEBUG (its logging), and which of the three
 * REQUIRED variables are set (only to log their names). The CLI passes process.env itself, so in the proxy
 * the two are the same; Node reads NODE_EXTRA_CA_CERTS once, at start.
 */
import type { WorkloadIdentityCredential } from '@azure/identity';
import type { Logger } from '../log.js';
import { deadline } from '../deadline.js';
import type { Environment } from '../manifest/interpolate.js';

export interface WorkloadIdentity {
  /** A token for `scope`. Rejects with a message fit for a client: it names the cause and holds no secret. */
  token(scope: string): Promise<string>;
  /**
   * An upstream answered 401 to `token`, a token for `scope` (revoked, say, or signed with a key it no
   * longer trusts): the next token(scope) fetches a new one, unless a newer one is in use already.
   */
  refused(scope: string, token: string): void;
}

/** Without any of these the credential cannot ask for a token. */
const REQUIRED = ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE'] as const;

/** The variables an identity needs that `env` lacks: all three when the pod is not labelled for it. */
export const missingIdentityVariables = (env: Environment): string[] => REQUIRED.filter((name) => !env[name]);
/** The library's own default authority, passed explicitly so that it does not look in process.env. */
const PUBLIC_CLOUD = 'https://login.microsoftonline.com';
/** Per HTTP attempt to the authority: the library sets no limit, so a silent endpoint would hold requests forever. */
const ATTEMPT_TIMEOUT_MS = 10_000;
/**
 * Per fetch, its retries included: the library waits out each Retry-After in full, three times, and every
 * caller for the scope waits on the one fetch in progress. Past it the fetch counts as failed (it may go
 * on, on a credential no longer used).
 */
const FETCH_TIMEOUT_MS = 30_000;
/** How long a failed fetch is the answer for its scope (or its still good token is) before the next try. */
const FAILURE_HOLD_MS = 5000;
/** A token this far from its expiry still serves when its renewal fails. */
const STILL_GOOD_MS = 60_000;
const MAX_REASON_LENGTH = 300;
/**
 * A refused token is dropped at most this often per scope. An upstream that refuses every token (it expects
 * another audience, say) would otherwise send each of its requests to the token endpoint, which throttles
 * an application that asks too often, for every scope at once.
 */
const REFUSAL_REFETCH_INTERVAL_MS = 10_000;
/** The federated assertion and the tokens are JWTs; an error message must never carry one. */
const JWT = /eyJ[\w-]*\.[\w-]*(\.[\w-]*)?/g;

const identities = new WeakMap<Environment, WorkloadIdentity>();

/**
 * The identity of the proxy running with `env`, built on first use and then shared: one per process, so
 * its tokens outlive reloads and restarts of servers, and servers that ask for the same scope share one
 * token. Every server would build the same credential from the same environment anyway.
 */
export function workloadIdentity(env: Environment, log: Logger): WorkloadIdentity {
  let identity = identities.get(env);
  if (!identity) {
    identity = createWorkloadIdentity(env, log);
    identities.set(env, identity);
  }
  return identity;
}

/** A scope's credential and the token it last handed out. */
interface ScopeCredential {
  credential: Promise<WorkloadIdentityCredential | string>;
  lastToken?: { token: string; expiresOn: number };
}

function createWorkloadIdentity(env: Environment, log: Logger): WorkloadIdentity {
  /** Built on the first token asked for (see createCredential), one per scope, replaced when refused. */
  const credentials = new Map<string, ScopeCredential>();
  const pending = new Map<string, Promise<string>>();
  /** When a refusal last replaced each scope's credential. */
  const replacedAt = new Map<string, number>();
  /** The last failed fetch per scope, and the still good token that serves instead, for FAILURE_HOLD_MS. */
  const failures = new Map<string, { at: number; error: Error; serving?: string }>();

  const fetchToken = async (scope: string): Promise<string> => {
    let scoped = credentials.get(scope);
    if (!scoped) {
      scoped = { credential: createCredential(env) };
      credentials.set(scope, scoped);
    }
    const ready = await scoped.credential;
    if (typeof ready === 'string') throw noToken(scope, ready);
    try {
      // Raced, not aborted: the library passes no abort signal on to the client-assertion flow.
      const token = await deadline(
        ready.getToken(scope),
        FETCH_TIMEOUT_MS,
        `no token within ${FETCH_TIMEOUT_MS / 1000} s (the endpoint is slow, or asks to retry later)`,
      );
      failures.delete(scope);
      // A different expiry than the token last handed out means a new token, worth a log line.
      if (scoped.lastToken?.expiresOn !== token.expiresOnTimestamp) {
        const expiresOn = new Date(token.expiresOnTimestamp).toISOString();
        log.info('workload-identity-token', { scope, expiresOn });
      }
      scoped.lastToken = { token: token.token, expiresOn: token.expiresOnTimestamp };
      return token.token;
    } catch (error) {
      const reason = withAuthority(reasonOf(error), authorityOf(env));
      const failure = noToken(scope, reason);
      // Replaced meanwhile (a refusal): this fetch, and the token it held, are not the scope's any more.
      if (credentials.get(scope) !== scoped) throw failure;
      // Its token goes on with the next credential: a refusal drops a token, a failed renewal does not.
      const kept = scoped.lastToken;
      credentials.set(scope, { credential: createCredential(env), ...(kept && { lastToken: kept }) });
      const serving = kept && kept.expiresOn - Date.now() > STILL_GOOD_MS ? kept.token : undefined;
      failures.set(scope, { at: Date.now(), error: failure, ...(serving && { serving }) });
      if (serving === undefined) throw failure;
      log.warn('workload-identity-renewal-failed', { scope, reason, note: 'the current token serves on' });
      return serving;
    }
  };

  return {
    token(scope) {
      const failure = failures.get(scope);
      if (failure && Date.now() - failure.at < FAILURE_HOLD_MS) {
        return failure.serving === undefined
          ? Promise.reject(failure.error)
          : Promise.resolve(failure.serving);
      }
      let shared = pending.get(scope);
      if (!shared) {
        const fetching = fetchToken(scope).finally(() => {
          // A refusal may have replaced this call with one on a new credential meanwhile.
          if (pending.get(scope) === fetching) pending.delete(scope);
        });
        pending.set(scope, fetching);
        shared = fetching;
      }
      return shared;
    },
    refused(scope, token) {
      if (credentials.get(scope)?.lastToken?.token !== token) return;
      const now = Date.now();
      if (now - (replacedAt.get(scope) ?? -Infinity) < REFUSAL_REFETCH_INTERVAL_MS) return;
      replacedAt.set(scope, now);
      credentials.delete(scope);
      failures.delete(scope); // it may hold the refused token as the one that serves
      // A call in progress would get the refused token from the old credential's cache.
      pending.delete(scope);
      log.warn('workload-identity-token-refused', { scope });
    },
  };
}

/**
 * The credential, or why there is none. The library is loaded here, not with this module: importing it
 * takes about 200 ms, which a proxy without such servers, and every other CLI command, should not pay.
 */
async function createCredential(env: Environment): Promise<WorkloadIdentityCredential | string> {
  const missing = missingIdentityVariables(env);
  if (missing.length > 0) return `${missing.join(', ')} not set in the proxy's environment`;
  try {
    const { WorkloadIdentityCredential } = await import('@azure/identity');
    return new WorkloadIdentityCredential({
      clientId: env.AZURE_CLIENT_ID,
      tenantId: env.AZURE_TENANT_ID,
      tokenFilePath: env.AZURE_FEDERATED_TOKEN_FILE,
      authorityHost: authorityOf(env),
      // Instance discovery asks login.microsoftonline.com whether the authority is a known one, so any other
      // authority host (a private cloud, a test endpoint) fails. The authority comes from the proxy's own
      // environment, trusted as much as the federated token file beside it. Known clouds are unaffected:
      // MSAL has their endpoints built in.
      disableInstanceDiscovery: true,
      additionalPolicies: [
        {
          position: 'perRetry',
          policy: {
            name: 'attemptTimeout',
            sendRequest: (request, next) => {
              request.timeout = ATTEMPT_TIMEOUT_MS;
              return next(request);
            },
          },
        },
      ],
    });
  } catch (error) {
    // The constructor checks the tenant id's characters and that the authority uses https.
    return reasonOf(error);
  }
}

const authorityOf = (env: Environment): string => env.AZURE_AUTHORITY_HOST || PUBLIC_CLOUD;

/** MSAL's errors for an endpoint it could not reach name neither it nor why; a reader needs the host. */
const UNREACHABLE = /^(network_error|endpoints_resolution_error)\b/;

function withAuthority(reason: string, authority: string): string {
  const unreachable = UNREACHABLE.exec(reason);
  if (!unreachable) return reason;
  return `the token endpoint at ${authority} could not be reached or gave no usable answer (${unreachable[1]})`;
}

function noToken(scope: string, reason: string): Error {
  return new Error(`no workload identity token for ${scope}: ${reason}`);
}

/** The library's message, first line only (the rest is trace ids and links), with nothing shaped like a JWT. */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split(/\r?\n/, 1)[0] ?? '';
  return firstLine.trim().replace(JWT, '[redacted]').slice(0, MAX_REASON_LENGTH);
}
