import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { RepeatFilter } from '../../src/upstream/repeat-filter.js';

test('a key passes once per window, then with the count of those held back', () => {
  const filter = new RepeatFilter(1000);
  assert.is(filter.pass('a', 0), 0);
  assert.is(filter.pass('a', 10), undefined);
  assert.is(filter.pass('a', 999), undefined);
  assert.is(filter.pass('b', 999), 0, 'another key has a window of its own');
  assert.is(filter.pass('a', 1000), 2);
  assert.is(filter.pass('a', 1001), undefined);
});

test('at its limit of keys, it forgets those whose window is over, or all of them', () => {
  const filter = new RepeatFilter(1000, 2);
  filter.pass('old', 0);
  filter.pass('recent', 900);
  assert.is(filter.pass('new', 1100), 0);
  assert.is(filter.pass('recent', 1100), undefined, 'still within its window: remembered');
  assert.is(filter.pass('third', 1200), 0, 'no key over its window: all forgotten');
  assert.is(filter.pass('recent', 1200), 0);
});

test.run();
