import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { idOfOverlongAnswer } from '../../src/upstream/overlong-answer.js';

// The id of a response too long to parse, from its two ends only. A child's real overlong answers are in
// test/e2e/child.test.ts.

const middle = '"data":"xxxx"';

test('an answer with its id first, as most writers put it', () => {
  assert.is(idOfOverlongAnswer(`{"jsonrpc":"2.0","id":42,"result":{${middle}`, `xxx"}}`), 42);
  assert.is(idOfOverlongAnswer(`{ "jsonrpc": "2.0", "id": "a\\"b", "error": {`, `x"}}}`), 'a"b');
});

test("an answer with its id last, the TypeScript SDK's order", () => {
  assert.is(idOfOverlongAnswer(`{"result":{${middle}`, `xx"},"jsonrpc":"2.0","id":-7}`), -7);
  assert.is(idOfOverlongAnswer(`{"error":{"code":1,`, `"},"jsonrpc":"2.0","id":"s-1"}\r`), 's-1');
});

test('requests, notifications and ids of nested objects are not taken for answers', () => {
  // A request's id also comes last in the SDK's order: it is not an answer to fail anything with.
  assert.is(
    idOfOverlongAnswer(`{"method":"sampling/createMessage","params":{`, `}},"jsonrpc":"2.0","id":3}`),
    undefined,
  );
  assert.is(
    idOfOverlongAnswer(`{"jsonrpc":"2.0","method":"notifications/x","params":{`, `"id":5}}`),
    undefined,
  );
  // A result whose last member is an object with an id of its own: two braces end the line, not one.
  assert.is(idOfOverlongAnswer(`{"result":{"item":{`, `"x","id":9}}`), undefined);
  assert.is(idOfOverlongAnswer('xxxxxxxx', 'xxxxxxxx'), undefined);
});

test('an id that is not JSON is no id, and nothing throws', () => {
  // Thrown, it escaped the child's stdout handler and ended the proxy.
  assert.is(idOfOverlongAnswer('{"jsonrpc":"2.0","id":007,"result":{', 'x"}}'), undefined);
  assert.is(idOfOverlongAnswer('{"result":{', '"x"},"jsonrpc":"2.0","id":"a\\qb"}'), undefined);
});

test.run();
