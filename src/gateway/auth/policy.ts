import type { ServerSpec } from '../../manifest/types.js';
import type { Principal } from './principal.js';

export type Decision = { allow: true } | { allow: false; reason: string };

/**
 * May this principal use this server? API keys are limited by their `servers` list. JWT callers need one
 * of the server's `requiredRoles` (as the gateway's adapter payloads mean them) and all of its
 * `requiredScopes`; a server that requires neither is open to every valid token. Pure.
 */
export function authorize(
  principal: Principal,
  server: Pick<ServerSpec, 'name' | 'requiredRoles' | 'requiredScopes'>,
): Decision {
  if (principal.kind === 'api-key') {
    return principal.servers === '*' || principal.servers.includes(server.name)
      ? { allow: true }
      : { allow: false, reason: `the key "${principal.name}" may not use server ${server.name}` };
  }
  const roles = server.requiredRoles ?? [];
  if (roles.length > 0 && !roles.some((r) => principal.roles.includes(r))) {
    return { allow: false, reason: `server ${server.name} requires one of the roles: ${roles.join(', ')}` };
  }
  const missing = (server.requiredScopes ?? []).filter((s) => !principal.scopes.includes(s));
  if (missing.length > 0) {
    return { allow: false, reason: `server ${server.name} requires the scopes: ${missing.join(', ')}` };
  }
  return { allow: true };
}
