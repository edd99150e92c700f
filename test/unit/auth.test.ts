import { createHash } from 'node:crypto';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { matchApiKey } from '../../src/gateway/auth/api-keys.js';
import { presentedCredential } from '../../src/gateway/auth/credentials.js';
import { authorize } from '../../src/gateway/auth/policy.js';
import type { Principal } from '../../src/gateway/auth/principal.js';
import { SessionOwners } from '../../src/gateway/auth/session-owners.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const KEYS = [
  { name: 'alpha', sha256: sha('alpha-secret-0123456789'), servers: ['a'] },
  { name: 'all', sha256: sha('all-secret-0123456789'), servers: '*' as const },
];

test('credentials come from Authorization: Bearer or X-API-Key, one of them', () => {
  assert.equal(presentedCredential({ authorization: 'Bearer abc' }), { value: 'abc' });
  assert.equal(presentedCredential({ authorization: 'bearer   abc' }), { value: 'abc' });
  assert.equal(presentedCredential({ 'x-api-key': 'k' }), { value: 'k' });
  assert.is(presentedCredential({}), undefined);
  assert.ok('malformed' in presentedCredential({ authorization: 'Basic dXNlcjpwYXNz' })!);
  assert.ok('malformed' in presentedCredential({ authorization: 'Bearer a', 'x-api-key': 'b' })!);
  assert.ok('malformed' in presentedCredential({ 'x-api-key': '' })!);
  assert.ok('malformed' in presentedCredential({ 'x-api-key': ['a', 'b'] })!);
});

test('an API key is found by its digest; a wrong or partial key is not', () => {
  assert.equal(matchApiKey(KEYS, 'alpha-secret-0123456789'), {
    kind: 'api-key',
    id: 'key:alpha',
    name: 'alpha',
    servers: ['a'],
  });
  assert.is(matchApiKey(KEYS, 'alpha-secret-012345678'), undefined);
  assert.is(matchApiKey(KEYS, ''), undefined);
  assert.is(matchApiKey([], 'anything'), undefined);
});

const key = (servers: '*' | string[]): Principal => ({ kind: 'api-key', id: 'k', name: 'k', servers });
const jwt = (roles: string[], scopes: string[] = []): Principal => ({
  kind: 'jwt',
  id: 'j',
  name: 'j',
  roles,
  scopes,
});

test('API keys are limited by their servers list, roles do not apply to them', () => {
  assert.ok(authorize(key('*'), { name: 'x', requiredRoles: ['admin'] }).allow);
  assert.ok(authorize(key(['x']), { name: 'x' }).allow);
  assert.not.ok(authorize(key(['y']), { name: 'x' }).allow);
});

test('JWT callers need one of the required roles and all of the required scopes', () => {
  assert.ok(authorize(jwt([]), { name: 'open' }).allow);
  assert.ok(authorize(jwt(['reader', 'writer']), { name: 's', requiredRoles: ['writer', 'admin'] }).allow);
  const denied = authorize(jwt(['reader']), { name: 's', requiredRoles: ['writer', 'admin'] });
  assert.equal(denied, { allow: false, reason: 'server s requires one of the roles: writer, admin' });
  assert.ok(authorize(jwt([], ['a', 'b']), { name: 's', requiredScopes: ['a', 'b'] }).allow);
  assert.not.ok(authorize(jwt([], ['a']), { name: 's', requiredScopes: ['a', 'b'] }).allow);
});

test('a session belongs to the principal that opened it, on its server', () => {
  const owners = new SessionOwners();
  owners.record('s1', 'alpha', 'key:a');
  assert.ok(owners.mayUse('s1', 'alpha', 'key:a'));
  assert.not.ok(owners.mayUse('s1', 'alpha', 'key:b'));
  assert.not.ok(owners.mayUse('s1', 'beta', 'key:a'));
  assert.not.ok(owners.mayUse('unknown', 'alpha', 'key:b'), "a session with no known owner is no one's");
  owners.prune((server, id) => !(server === 'alpha' && id === 's1'));
  assert.is(owners.size, 0);
});

test.run();
