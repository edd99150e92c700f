import * as assert from 'uvu/assert';
import { SessionOwners } from '../../src/gateway/auth/session-owners.js';
import { test } from '../support/uvu.js';

test('a session id handed out again to another principal belongs to no one', () => {
  const owners = new SessionOwners();
  owners.record('fixed', 'remote', 'key:a');
  owners.record('fixed', 'remote', 'key:b');
  assert.not.ok(owners.mayUse('fixed', 'remote', 'key:b'), 'taken over');
  assert.not.ok(owners.mayUse('fixed', 'remote', 'key:a'), 'shared');
  owners.record('fixed', 'remote', 'key:c');
  assert.not.ok(owners.mayUse('fixed', 'remote', 'key:c'), 'a third one takes it after all');
});

test('the same principal opening the same id again keeps it', () => {
  const owners = new SessionOwners();
  owners.record('s1', 'remote', 'key:a');
  owners.record('s1', 'remote', 'key:a');
  assert.ok(owners.mayUse('s1', 'remote', 'key:a'));
});

test('an id handed out on another server is contested too', () => {
  const owners = new SessionOwners();
  owners.record('s1', 'one', 'key:a');
  owners.record('s1', 'two', 'key:a');
  assert.not.ok(owners.mayUse('s1', 'two', 'key:a'));
});

test.run();
