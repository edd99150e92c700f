import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { framed, parsedFrom, spliceId, withId, withOwnId } from '../../src/upstream/message-text.js';

/** The message's text as one string (its pieces, strings and bytes, joined), and the id splice on a text kept whole. */
const textOf = (message: JSONRPCMessage) => framed('', message, '').join('');
const splice = (text: string, from: string | number, to: string | number) =>
  spliceId([Buffer.from(text)], from, to)?.join('');
/** As the proxy parses a body or a child's line: from bytes (a text's UTF-8, when given a text), decoded. */
const parse = (input: string | Buffer) => {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const text = bytes.toString('utf8');
  const message = JSON.parse(text) as JSONRPCMessage & { id: number };
  parsedFrom(message, text, bytes);
  return message;
};

test('the id is spliced where the SDKs write it: last', () => {
  assert.is(
    splice('{"result":{},"jsonrpc":"2.0","id":7}', 7, 'c-1'),
    '{"result":{},"jsonrpc":"2.0","id":"c-1"}',
  );
  assert.is(
    splice('{"method":"x","jsonrpc":"2.0","id":"a\\"b"}', 'a"b', 3),
    '{"method":"x","jsonrpc":"2.0","id":3}',
  );
  assert.is(splice('{"id":7}', 7, 8), '{"id":8}');
});

test('anything else is left to serialization', () => {
  const cases: [string, number][] = [
    ['{"id":7,"result":{}}', 7], // id first
    ['{"result":{"id":7}}', 7], // an id nested at the end
    ['{"result":{"s":"x\\"id":7}', 7], // the tail inside a key after an escaped quote
    ['{"result":{},"id":7}\r', 7], // trailing whitespace
    ['{"result":{}, "id": 7}', 7], // spaced out
    ['{"result":{},"id":8}', 7], // another id
  ];
  for (const [text, id] of cases) assert.is(splice(text, id, 1), undefined, text);
});

test('whatever is spliced parses to the message under its new id', () => {
  // Messages shaped to end in many ways; the splice must never change anything but the id.
  const values = ['x', '"', '\\', '","id":1}', '}', { id: 1 }, [1, '"id":1}'], 1.5, null];
  let spliced = 0;
  for (const value of values) {
    for (const from of [1, 'one', 0]) {
      for (const text of [
        JSON.stringify({ result: { value }, jsonrpc: '2.0', id: from }),
        JSON.stringify({ id: from, result: { value } }),
        JSON.stringify({ result: { value, id: from } }),
      ]) {
        const result = splice(text, from, 'new');
        if (result === undefined) continue;
        spliced++;
        assert.equal(JSON.parse(result), { ...JSON.parse(text), id: 'new' }, text);
      }
    }
  }
  assert.is(spliced, values.length * 3, 'each message with its id last was spliced');
});

test('a large message keeps its text through an id change; a small one is serialized', () => {
  const big = { result: { text: 'x'.repeat(70_000) }, jsonrpc: '2.0', id: 4 } as JSONRPCMessage;
  const bigText = JSON.stringify(big);
  const parsed = parse(bigText);
  const renamed = withId(parsed, 'client-9');
  assert.is(renamed.id, 'client-9');
  assert.is(parsed.id, 4, 'the original is not changed');
  assert.is(textOf(renamed), bigText.replace('"id":4}', '"id":"client-9"}'));
  assert.equal(JSON.parse(textOf(renamed)), renamed);

  // Kept, the small one's text would come back with its space; serialized, it comes back without.
  const smallText = '{"result": {},"jsonrpc":"2.0","id":1}';
  const small = parse(smallText);
  assert.is(textOf(withId(small, 2)), '{"result":{},"jsonrpc":"2.0","id":2}');
});

test("a client's request keeps its text under the proxy's id only when the text names id once", () => {
  const pad = 'x'.repeat(70_000);
  // As the SDK's client writes a request: id last.
  const once = `{"method":"tools/call","params":{"name":"echo","arguments":{"text":"${pad}"}},"jsonrpc":"2.0","id":3}`;
  const kept = withOwnId(parse(once), 41);
  // Kept: the client's text, the spliced id, the framing. Serialized again, it would be one text and the framing.
  assert.is(framed('', kept, '\n').length, 3, 'kept: written in pieces');
  assert.is(textOf(kept), once.replace('"id":3}', '"id":41}'));

  const doubtful = [
    `{"id":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // twice at the top
    `{"method":"tools/call","params":{"arguments":{"id":1,"p":"${pad}"}},"jsonrpc":"2.0","id":3}`, // nested
    `{"method":"tools/call","params":{"name":"id","p":"${pad}"},"jsonrpc":"2.0","id":3}`, // a value
    `{"ID":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // another case
    `{"Id":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`,
    `{"\\u0069d":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // escaped i
    `{"i\\u0064":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // escaped d
    `{"\\u0049D":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // escaped I
    `{"I\\u0044":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // escaped D
    `{"method":"tools/call","params":{"p":"\\u0069 ${pad}"},"jsonrpc":"2.0","id":3}`, // an escape in a value
    `{"\u0131d":1,"method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`, // dotless i
    `{"method":"tools/call","params":{"p":"é ${pad}"},"jsonrpc":"2.0","id":3}`, // beyond ASCII anywhere
    `{"method":"tools/call","params":{"p":"${pad} \u{1F600}"},"jsonrpc":"2.0","id":3}`, // an astral character
    `{"method":"tools/call","params":{"p":"${pad} \uFFFD"},"jsonrpc":"2.0","id":3}`, // an invalid byte, decoded
    // The method given twice: a parser that keeps the first would unsubscribe, not call.
    `{"method":"resources/unsubscribe","params":{"uri":"a","p":"${pad}"},"method":"tools/call","jsonrpc":"2.0","id":3}`,
    `{"METHOD":"resources/unsubscribe","method":"tools/call","params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`,
    // A progress token in params given twice: the proxy reads the last (none), so it rewrites none.
    `{"method":"tools/call","params":{"_meta":{"progressToken":7}},"params":{"p":"${pad}"},"jsonrpc":"2.0","id":3}`,
    `{"method":"tools/call","params":{"p":"${pad}","_meta":{"progress_token":1}},"jsonrpc":"2.0","id":3}`,
    // params twice: a parser that keeps the first would run another tool than the proxy saw.
    `{"method":"tools/call","params":{"name":"evil","p":"${pad}"},"params":{"name":"echo"},"jsonrpc":"2.0","id":3}`,
    // Only a tools/call's text is kept.
    `{"method":"prompts/get","params":{"name":"p","arguments":{"a":"${pad}"}},"jsonrpc":"2.0","id":3}`,
  ];
  for (const text of doubtful) {
    const parsed = parse(text);
    const copy = withOwnId(parsed, 41);
    assert.is(copy.id, 41);
    // Serialized again: one text (joined with the framing when small), never the client's text and an id.
    assert.ok(framed('', copy, '\n').length <= 2, `serialized again: ${text.slice(0, 60)}`);
    assert.is(textOf(copy), JSON.stringify({ ...parsed, id: 41 }), text.slice(0, 60));
  }
});

test('text with a line break is never relayed as it is', () => {
  for (const breakChar of ['\n', '\r']) {
    const message = { result: { text: 'x'.repeat(70_000) }, jsonrpc: '2.0', id: 4 } as JSONRPCMessage;
    const text = JSON.stringify(message).replace('{"result"', `{${breakChar}"result"`);
    const parsed = parse(text);
    assert.is(textOf(parsed), JSON.stringify(message));
    assert.is(textOf(withId(parsed, 5)), JSON.stringify({ ...message, id: 5 }));
  }
});

test('a large message is written in pieces: its bytes as read, the spliced id, the framing; never a copy', () => {
  const text = JSON.stringify({ result: { text: 'y'.repeat(70_000) }, jsonrpc: '2.0', id: 4 });
  const bytes = Buffer.from(text);
  const parsed = parse(bytes);
  const once = withId(parsed, 'a');
  const twice = withId(once, 7); // spliced again: only the id's own piece changes
  const pieces = framed('data: ', twice, '\n\n');
  assert.is(pieces.length, 4);
  assert.is(pieces[0], 'data: ');
  const kept = pieces[1] as Buffer;
  assert.ok(
    kept.buffer === bytes.buffer && kept.byteOffset === bytes.byteOffset,
    'the bytes read, not a copy',
  );
  assert.is(kept.length, bytes.length - '"id":4}'.length);
  assert.is(String(pieces[2]), '"id":7}');
  assert.is(pieces[3], '\n\n');
  assert.equal(JSON.parse(pieces.slice(1, 3).join('')), { ...parsed, id: 7 });
  // A small message is one string, framing included.
  assert.equal(framed('data: ', { jsonrpc: '2.0', id: 1, result: {} }, '\n\n'), [
    'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n',
  ]);
});

test("a client's request with a byte that is not UTF-8 is serialized again, not relayed as it came", () => {
  // Decoded, 0xFF is one U+FFFD: as many characters as bytes, like ASCII; a child may read the byte otherwise.
  const head = `{"method":"tools/call","params":{"name":"echo","arguments":{"text":"${'x'.repeat(70_000)}`;
  const bytes = Buffer.concat([
    Buffer.from(head),
    Buffer.from([0xff]),
    Buffer.from('"}},"jsonrpc":"2.0","id":3}'),
  ]);
  assert.is(bytes.toString('utf8').length, bytes.length);
  const parsed = parse(bytes);
  const copy = withOwnId(parsed, 41);
  assert.is(textOf(copy), JSON.stringify({ ...parsed, id: 41 }));
  assert.ok(!framed('', copy, '').some(Buffer.isBuffer), 'none of the bytes as they came');
});

test.run();
