/** Host names and IP addresses as a URL or a `--host` flag gives them. */
import { BlockList, isIP } from 'node:net';

/** An IPv6 address without the brackets a URL puts around it. */
export const bareHost = (hostname: string): string =>
  hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;

/** A host as a URL names it: an IPv6 address in brackets (the inverse of bareHost). */
export const urlHost = (host: string): string => (ipType(host) === 'ipv6' ? `[${host}]` : host);

/** What BlockList calls the family of an IP address; undefined for a name. */
export function ipType(host: string): 'ipv4' | 'ipv6' | undefined {
  const family = isIP(host);
  return family === 0 ? undefined : family === 4 ? 'ipv4' : 'ipv6';
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** `localhost`, 127.0.0.0/8 or ::1: never a name that merely starts with "127.". */
export function isLoopback(hostname: string): boolean {
  const host = bareHost(hostname);
  const type = ipType(host);
  return type === undefined ? host === 'localhost' : LOOPBACK.check(host, type);
}
