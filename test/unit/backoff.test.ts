import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { decideRestart, RESTART_BACKOFF } from '../../src/upstream/backoff.js';
import type { ChildExit } from '../../src/upstream/child.js';

const crashed: ChildExit = { code: 1, signal: null };
const clean: ChildExit = { code: 0, signal: null };
const killed: ChildExit = { code: null, signal: 'SIGKILL' };
const notFound: ChildExit = {
  code: null,
  signal: null,
  error: new Error('command "uvx" not found on PATH (/usr/bin)'),
};

/** Start times of a crash loop: each child started, crashed after `runMs`, and was restarted as told. */
function crashLoop(count: number, runMs: number): { starts: number[]; now: number } {
  const starts: number[] = [];
  let now = 1_000_000;
  for (let i = 0; i < count; i++) {
    starts.push(now);
    now += runMs;
    if (i < count - 1) {
      const decision = decideRestart('always', crashed, starts, now);
      if (decision.action !== 'restart') throw new Error(`gave up early, after ${i + 1} starts`);
      now += decision.delayMs;
    }
  }
  return { starts, now };
}

test('a first crash restarts after the initial delay', () => {
  assert.equal(decideRestart('always', crashed, [1000], 1500), { action: 'restart', delayMs: 250 });
});

test('the delay doubles with each crash in a row and is capped at 30 s', () => {
  const delays: number[] = [];
  const starts: number[] = [];
  let now = 0;
  for (let i = 0; i < RESTART_BACKOFF.maxFailedStarts - 1; i++) {
    starts.push(now);
    now += 100;
    const decision = decideRestart('always', crashed, starts, now);
    assert.is(decision.action, 'restart');
    if (decision.action === 'restart') delays.push(decision.delayMs);
    now += delays.at(-1)!;
  }
  assert.equal(delays, [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
});

test('a server that keeps crashing at start-up is given up with the reason', () => {
  const { starts, now } = crashLoop(RESTART_BACKOFF.maxFailedStarts, 100);
  assert.equal(decideRestart('always', crashed, starts, now), {
    action: 'give-up',
    reason: 'gave up after 10 starts in a row that each ended within 60 s',
  });
});

test('a run of a minute or more resets the backoff', () => {
  const { starts, now } = crashLoop(RESTART_BACKOFF.maxFailedStarts - 1, 100);
  const stable = [...starts, now + 250];
  const later = now + 250 + RESTART_BACKOFF.stableAfterMs;
  assert.equal(decideRestart('always', crashed, stable, later), { action: 'restart', delayMs: 250 });
  // The crash loop before the stable run no longer counts: the next quick crash is the first of a new streak.
  const next = [...stable, later + 250];
  assert.equal(decideRestart('always', crashed, next, later + 1000), { action: 'restart', delayMs: 250 });
  assert.equal(decideRestart('always', crashed, [...next, later + 1500], later + 2000), {
    action: 'restart',
    delayMs: 500,
  });
});

test('an occasional crash is always restarted quickly', () => {
  const hour = 3_600_000;
  const starts = Array.from({ length: 50 }, (_, i) => i * hour);
  assert.equal(decideRestart('always', crashed, starts, 50 * hour), { action: 'restart', delayMs: 250 });
});

test('a spawn failure gives up at once, whatever the policy', () => {
  for (const policy of ['always', 'on-failure', 'never'] as const) {
    assert.equal(decideRestart(policy, notFound, [1000], 1001), {
      action: 'give-up',
      reason: 'could not start: command "uvx" not found on PATH (/usr/bin)',
    });
  }
});

test('on-failure restarts after a non-zero exit or a signal, and stays down after a clean exit', () => {
  assert.is(decideRestart('on-failure', crashed, [0], 100).action, 'restart');
  assert.is(decideRestart('on-failure', killed, [0], 100).action, 'restart');
  assert.equal(decideRestart('on-failure', clean, [0], 100), { action: 'stay-down' });
});

test('always restarts even after a clean exit; never stays down even after a crash', () => {
  assert.is(decideRestart('always', clean, [0], 100).action, 'restart');
  assert.equal(decideRestart('never', crashed, [0], 100), { action: 'stay-down' });
  assert.equal(decideRestart('never', killed, [0], 100), { action: 'stay-down' });
});

test('the constants can be overridden', () => {
  const opts = { initialDelayMs: 10, maxDelayMs: 25, maxFailedStarts: 3, stableAfterMs: 1000 };
  assert.equal(decideRestart('always', crashed, [0, 50], 100, opts), { action: 'restart', delayMs: 20 });
  assert.is(decideRestart('always', crashed, [0, 50, 90], 100, opts).action, 'give-up');
  assert.equal(decideRestart('always', crashed, [0, 50], 2000, opts), { action: 'restart', delayMs: 10 });
});

test('start times may come in any order', () => {
  assert.equal(decideRestart('always', crashed, [300, 0, 100], 400), { action: 'restart', delayMs: 1000 });
});

test.run();
