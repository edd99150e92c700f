import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { interpolate } from '../../src/manifest/interpolate.js';

test('replaces ${VAR} in nested strings and leaves other values alone', () => {
  const input = { a: 'x-${A}-y', list: ['${A}', 3, true, null], nested: { b: '${B}' } };
  const { value, problems } = interpolate(input, { A: 'one', B: 'two' });
  assert.equal(problems, []);
  assert.equal(value, { a: 'x-one-y', list: ['one', 3, true, null], nested: { b: 'two' } });
  assert.equal(input.a, 'x-${A}-y', 'the input is not mutated');
});

test('a default applies when the variable is unset or empty, as in sh', () => {
  const { value } = interpolate(['${U:-d1}', '${E:-d2}', '${S:-d3}', '${U:-}'], { E: '', S: 'set' });
  assert.equal(value, ['d1', 'd2', 'set', '']);
});

test('$${ is a literal ${ and a lone $ is kept', () => {
  const { value } = interpolate('cost $5, literal $${HOME}, $HOME', { HOME: '/root' });
  assert.is(value, 'cost $5, literal ${HOME}, $HOME');
});

test('a missing variable names the variable and the path, never a value', () => {
  const { problems } = interpolate(
    { servers: { a: { env: { T: 'Bearer ${TOKEN}' } } } },
    { OTHER: 's3cret' },
  );
  assert.is(problems.length, 1);
  assert.equal(problems[0]!.path, ['servers', 'a', 'env', 'T']);
  assert.match(problems[0]!.message, 'TOKEN is not set');
  assert.not.match(problems[0]!.message, 's3cret');
});

test('every missing variable is reported, not just the first', () => {
  const { problems } = interpolate({ a: '${X}', b: '${Y}' }, {});
  assert.equal(
    problems.map((p) => p.path),
    [['a'], ['b']],
  );
});

test('unterminated and malformed references are errors', () => {
  assert.match(interpolate('${OPEN', {}).problems[0]!.message, 'unterminated');
  assert.match(interpolate('${BAD-NAME}', {}).problems[0]!.message, 'not a variable reference');
});

test.run();
