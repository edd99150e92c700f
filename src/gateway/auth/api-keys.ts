import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeySpec } from '../../manifest/types.js';
import type { Principal } from './principal.js';

/**
 * The key a secret belongs to, if any. Digests are compared in constant time, and every key is compared,
 * so neither the time taken nor an early exit tells an attacker how close a guess was.
 */
export function matchApiKey(keys: readonly ApiKeySpec[], secret: string): Principal | undefined {
  const digest = createHash('sha256').update(secret).digest();
  let found: ApiKeySpec | undefined;
  for (const key of keys) {
    if (timingSafeEqual(Buffer.from(key.sha256, 'hex'), digest)) found = key;
  }
  return found && { kind: 'api-key', id: `key:${found.name}`, name: found.name, servers: found.servers };
}
