import { ErrorCode } from '../upstream/jsonrpc.js';
import { denial, type Denial } from './denial.js';

/** Browsers on this machine are always allowed: the proxy often runs beside the tools that call it. */
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

/**
 * Refuses requests that a browser sent from a page whose origin is not allowed (DNS rebinding, a
 * foreign site driving the user's servers). Clients that are not browsers send no Origin and pass.
 */
export function originDenial(origin: string | undefined, allowed: readonly string[]): Denial | undefined {
  if (!origin || LOOPBACK_ORIGIN.test(origin)) return undefined;
  if (allowed.some((a) => a.toLowerCase() === origin.toLowerCase())) return undefined;
  return denial(403, ErrorCode.InvalidRequest, 'Forbidden: this Origin may not use the proxy');
}
