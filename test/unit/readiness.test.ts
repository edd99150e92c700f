import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { readiness, type ReadinessInput } from '../../src/gateway/readiness.js';

const server = (name: string, extra: Partial<ReadinessInput> = {}): ReadinessInput => ({
  name,
  state: 'ready',
  disabled: false,
  ...extra,
});

test('ready when every eager server is ready', () => {
  assert.equal(readiness([server('a', { startup: 'eager' }), server('b', { startup: 'eager' })]), {
    status: 'ready',
  });
});

test('an empty fleet is ready: there is nothing to wait for', () => {
  assert.equal(readiness([]), { status: 'ready' });
});

test('an eager server that is not ready holds readiness back, named with its state only', () => {
  const verdict = readiness([
    server('ok', { startup: 'eager' }),
    server('broken', { startup: 'eager', state: 'failed' }),
    server('booting', { startup: 'eager', state: 'starting' }),
  ]);
  assert.equal(verdict, {
    status: 'not ready',
    servers: [
      { name: 'broken', state: 'failed' },
      { name: 'booting', state: 'starting' },
    ],
  });
});

test('a restarting eager server is not ready', () => {
  assert.is(readiness([server('a', { startup: 'eager', state: 'restarting' })]).status, 'not ready');
});

test('lazy servers never hold readiness back, whatever their state', () => {
  for (const state of ['starting', 'restarting', 'failed', 'stopped'] as const) {
    assert.equal(readiness([server('lazy', { startup: 'lazy', state })]), { status: 'ready' }, state);
  }
});

test('disabled servers are not served, so they do not count', () => {
  assert.equal(readiness([server('off', { disabled: true, state: 'stopped', startup: 'eager' })]), {
    status: 'ready',
  });
});

test('servers without a startup mode (remote) count once their state is ready', () => {
  assert.equal(readiness([server('remote')]), { status: 'ready' });
  assert.equal(readiness([server('remote', { state: 'starting' })]), {
    status: 'not ready',
    servers: [{ name: 'remote', state: 'starting' }],
  });
});

test.run();
