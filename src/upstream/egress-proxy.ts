/**
 * Which egress proxy a remote server is reached through, from the standard variables in the proxy's own
 * environment (docs/decisions/0022-egress-proxy.md). Pure: decided once per upstream, from its URL.
 *
 * - `https://` upstreams use `https_proxy` / `HTTPS_PROXY`, `http://` ones `http_proxy` / `HTTP_PROXY`. The
 *   lower-case name wins when both are set, as in curl, wget, Python and undici; an empty value counts as
 *   unset. `ALL_PROXY` is not read: it usually names a SOCKS proxy.
 * - The proxy URL must be `http://` (a value without a scheme is taken as one, as curl does), port 80 when
 *   none is given; user and password in it become `Proxy-Authorization: Basic`.
 * - `no_proxy` / `NO_PROXY` (same precedence): entries separated by commas or white space. A name matches
 *   itself and every name under it, with or without a leading `.` or `*.` (`example.com`, `.example.com`
 *   and `*.example.com` all match `example.com` and `api.example.com`), as in curl. An IP address matches
 *   that address, `10.0.0.0/8` the addresses in it (AKS lists its pod and service ranges so); names are not
 *   resolved to match them. `:port` (IPv6: `[::1]:8080`) limits an entry to that port. An entry `*` turns
 *   the proxy off.
 * - Loopback (`localhost`, 127.0.0.0/8, ::1) is never proxied, whatever the variables say, as Go does: a
 *   proxy would connect to its own loopback, never to this pod's.
 */
import { BlockList } from 'node:net';
import { bareHost, ipType, isLoopback } from '../host-address.js';
import type { Environment } from '../manifest/interpolate.js';
import { urlCredentials } from '../url-credentials.js';

export interface EgressProxy {
  /** The variable it came from, as spelt in the environment. */
  variable: string;
  /** Host name or IP address to connect to (an IPv6 address without brackets). */
  host: string;
  port: number;
  /** `host:port`: how messages and logs name it. Never the credentials. */
  name: string;
  /** `Basic …`, when the proxy URL carries a user name. */
  authorization?: string;
}

export type EgressRoute =
  | { kind: 'direct' }
  | { kind: 'proxy'; proxy: EgressProxy }
  /** A proxy variable applies but is not a proxy URL this can use: the upstream must not be called. */
  | { kind: 'unusable'; reason: string };

const DIRECT: EgressRoute = { kind: 'direct' };

/** How `target` is to be reached, given the proxy's environment. */
export function egressRoute(target: URL, env: Environment): EgressRoute {
  const secure = target.protocol === 'https:';
  const variable = firstSet(env, secure ? ['https_proxy', 'HTTPS_PROXY'] : ['http_proxy', 'HTTP_PROXY']);
  if (variable === undefined) return DIRECT;
  const noProxy = firstSet(env, ['no_proxy', 'NO_PROXY']);
  if (isLoopback(target.hostname) || (noProxy !== undefined && bypassesProxy(target, env[noProxy]!))) {
    return DIRECT;
  }
  return parseProxyUrl(variable, env[variable]!);
}

/** The first of `names` set to something other than the empty string. */
function firstSet(env: Environment, names: readonly string[]): string | undefined {
  return names.find((name) => env[name] !== undefined && env[name] !== '');
}

function parseProxyUrl(variable: string, value: string): EgressRoute {
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    // The value may hold a password: the reason never quotes it.
    return { kind: 'unusable', reason: `${variable} is not a URL` };
  }
  if (url.protocol !== 'http:') {
    return {
      kind: 'unusable',
      reason: `${variable} is a ${url.protocol} URL; only http:// proxies are supported`,
    };
  }
  const host = bareHost(url.hostname);
  const port = url.port === '' ? 80 : Number(url.port);
  const proxy: EgressProxy = { variable, host, port, name: `${url.hostname}:${port}` };
  if (url.username !== '') {
    let credentials: string;
    try {
      credentials = urlCredentials(url)!; // a user name is set, so there are credentials
    } catch {
      return {
        kind: 'unusable',
        reason: `${variable} has a user or password that is not valid percent-encoding`,
      };
    }
    proxy.authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
  }
  return { kind: 'proxy', proxy };
}

/** What one NO_PROXY entry matches: a name and the names under it, or IP addresses. */
type NoProxyRule = { port?: number } & ({ domain: string } | { addresses: BlockList });

/** Whether `noProxy` (a NO_PROXY value) sends requests to `target` directly. */
export function bypassesProxy(target: URL, noProxy: string): boolean {
  const host = bareHost(target.hostname);
  const type = ipType(host);
  const port = target.port === '' ? (target.protocol === 'https:' ? 443 : 80) : Number(target.port);
  return parseNoProxy(noProxy).some((rule) => {
    if (rule === '*') return true;
    if (rule.port !== undefined && rule.port !== port) return false;
    if ('domain' in rule)
      return type === undefined && (host === rule.domain || host.endsWith(`.${rule.domain}`));
    return type !== undefined && rule.addresses.check(host, type);
  });
}

/** The entries of a NO_PROXY value; those that are not a name, an address or a range are left out. */
function parseNoProxy(value: string): (NoProxyRule | '*')[] {
  const rules: (NoProxyRule | '*')[] = [];
  for (const entry of value.toLowerCase().split(/[\s,]+/)) {
    if (entry === '*') rules.push('*');
    else if (entry !== '') {
      const rule = parseEntry(entry);
      if (rule) rules.push(rule);
    }
  }
  return rules;
}

function parseEntry(entry: string): NoProxyRule | undefined {
  const { host, port } = splitPort(entry);
  if (port !== undefined && !(port > 0 && port < 65536)) return undefined;
  const withPort = port === undefined ? {} : { port };
  const [address, bits] = host.split('/', 2) as [string, string?];
  const type = ipType(address);
  if (type !== undefined) {
    const addresses = new BlockList();
    if (bits === undefined) addresses.addAddress(address, type);
    else {
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (type === 'ipv4' ? 32 : 128)) return undefined;
      addresses.addSubnet(address, prefix, type);
    }
    return { ...withPort, addresses };
  }
  const domain = host.replace(/^\*/, '').replace(/^\./, '');
  return domain === '' || domain.includes('/') ? undefined : { ...withPort, domain };
}

/** `host:port`, `[v6]:port`, `[v6]`, or a bare host, address or range (a bare IPv6 address has no port). */
function splitPort(entry: string): { host: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed)
    return { host: bracketed[1]!, ...(bracketed[2] !== undefined && { port: Number(bracketed[2]) }) };
  const hostPort = /^([^:]+):(\d+)$/.exec(entry);
  if (hostPort) return { host: hostPort[1]!, port: Number(hostPort[2]) };
  return { host: entry };
}
