import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { confusableWith } from '../../src/upstream/confusable-names.js';

test('names some parser reads as the exact one are found; the exact name and others are not', () => {
  for (const name of [
    'ProgressToken',
    'progress_token',
    'progress-token',
    'PROGRESSTOKEN',
    'progreſſToken',
  ]) {
    assert.is(confusableWith({ progressToken: 1, [name]: 2 }, 'progressToken'), name, name);
  }
  assert.is(confusableWith({ progressToken: 1, other: 2, 'io.example/x': 3 }, 'progressToken'), undefined);
  assert.is(confusableWith({ _META: {} }, '_meta'), '_META');
  assert.is(confusableWith({ meta: {} }, '_meta'), 'meta');
  assert.is(confusableWith({ name: 'x', arguments: {} }, '_meta'), undefined);
  for (const notAnObject of [undefined, null, 1, 'progress_token']) {
    assert.is(confusableWith(notAnObject, 'progressToken'), undefined);
  }
});

test.run();
