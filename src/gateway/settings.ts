import { DEFAULT_LIMITS, type Limits, type Manifest } from '../manifest/types.js';
import { AccessControl } from './auth/access-control.js';

/**
 * What the gateway enforces besides the servers themselves: access control, allowed origins, limits.
 * One object, read per request and replaced in place on reload, so a reload never re-mounts middleware.
 */
export class GatewaySettings {
  allowedOrigins: readonly string[] = [];
  limits: Limits = DEFAULT_LIMITS;
  readonly access: AccessControl;

  /** `isLive` tells whether a server still holds a session: forgotten sessions free their owner record. */
  constructor(isLive: (server: string, sessionId: string) => boolean) {
    this.access = new AccessControl(isLive);
  }

  apply(manifest: Pick<Manifest, 'auth' | 'allowedOrigins' | 'limits'>): void {
    this.access.configure(manifest.auth);
    this.allowedOrigins = manifest.allowedOrigins;
    this.limits = manifest.limits;
  }
}
