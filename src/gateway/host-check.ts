import { bareHost, ipType } from '../host-address.js';
import { ErrorCode } from '../upstream/jsonrpc.js';
import { denial, type Denial } from './denial.js';

/** Which `Host` headers the proxy answers. */
export interface HostRule {
  /** The proxy listens on a loopback address: only names of this machine reach it honestly. */
  listensOnLoopback: boolean;
  /** Host names (no port) also answered, from the manifest's `allowedHosts`; lowercase. */
  allowedHosts: readonly string[];
}

/**
 * Refuses a request whose `Host` names a host the proxy does not answer to: DNS rebinding. A page on
 * evil.example whose name is made to resolve to 127.0.0.1 calls the proxy as its own origin, so its GETs
 * carry no `Origin` for the origin check to refuse, but its `Host` is still evil.example. The check holds
 * where that attack reaches, a proxy on loopback, or wherever `allowedHosts` is given; behind a container's
 * port any name may be right, so there it is off unless asked for. An IP address always passes (a page
 * served from one is the proxy's own origin, and probes call a pod by its address), as do `localhost` and
 * its subdomains, which browsers never look up in DNS. A request without `Host` (HTTP/1.0) is no browser's.
 */
export function hostDenial(host: string | undefined, rule: HostRule): Denial | undefined {
  if (host === undefined || (!rule.listensOnLoopback && rule.allowedHosts.length === 0)) return undefined;
  const name = hostName(host);
  if (ipType(bareHost(name)) || name === 'localhost' || name.endsWith('.localhost')) return undefined;
  if (rule.allowedHosts.includes(name)) return undefined;
  return denial(
    403,
    ErrorCode.InvalidRequest,
    // At most the longest DNS name: the header is echoed back.
    `Forbidden: this proxy does not answer to the host "${name.slice(0, 253)}" (DNS rebinding ` +
      'protection); list it in allowedHosts if it is yours',
  );
}

/**
 * The name in a Host header, without its port, lowercase, without the trailing dot of a fully qualified
 * name (`localhost.` is `localhost`); an IPv6 address keeps its brackets.
 */
function hostName(host: string): string {
  const lower = host.trim().toLowerCase();
  if (lower.startsWith('[')) return lower.slice(0, lower.indexOf(']') + 1);
  const colon = lower.indexOf(':');
  const name = colon === -1 ? lower : lower.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}
