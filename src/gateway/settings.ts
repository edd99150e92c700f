import type { IncomingHttpHeaders } from 'node:http';
import { DEFAULT_LIMITS, type Limits, type Manifest } from '../manifest/types.js';
import { AccessControl } from './auth/access-control.js';
import type { Denial } from './denial.js';
import { headerText } from './headers.js';
import { hostDenial, type HostRule } from './host-check.js';
import { originDenial } from './origin.js';

/**
 * What the gateway enforces besides the servers themselves: access control, allowed hosts and origins,
 * limits.
 * One object, read per request and replaced in place on reload, so a reload never re-mounts middleware.
 */
export class GatewaySettings {
  allowedOrigins: readonly string[] = [];
  hosts: HostRule;
  limits: Limits = DEFAULT_LIMITS;
  readonly access: AccessControl;

  /**
   * `isLive` tells whether a server still holds a session: forgotten sessions free their owner record.
   * `listensOnLoopback` is fixed for the process: `listen` is not reloaded.
   */
  constructor(isLive: (server: string, sessionId: string) => boolean, listensOnLoopback: boolean) {
    this.access = new AccessControl(isLive);
    this.hosts = { listensOnLoopback, allowedHosts: [] };
  }

  apply(manifest: Pick<Manifest, 'auth' | 'allowedOrigins' | 'allowedHosts' | 'limits'>): void {
    this.access.configure(manifest.auth);
    this.allowedOrigins = manifest.allowedOrigins;
    this.hosts = { ...this.hosts, allowedHosts: manifest.allowedHosts };
    this.limits = manifest.limits;
  }

  /**
   * The refusal of a request from a browser page it should not serve, on every route before anything else:
   * a name the proxy does not answer to (DNS rebinding), or a page of a foreign origin.
   */
  browserDenial(headers: IncomingHttpHeaders): Denial | undefined {
    return (
      hostDenial(headerText(headers, 'host'), this.hosts) ??
      originDenial(headerText(headers, 'origin'), this.allowedOrigins)
    );
  }
}
