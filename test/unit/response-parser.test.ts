import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  HttpParseError,
  ResponseParser,
  type ResponseHead,
} from '../../src/upstream/http1/response-parser.js';

/** A head from its lines, each given without CRLF. */
const head = (...lines: string[]): string => lines.map((line) => `${line}\r\n`).join('') + '\r\n';

interface Options {
  method?: string;
  maxHeadBytes?: number;
  /** Call close() after the last push, as at EOF. */
  close?: boolean;
}

interface Outcome {
  heads: ResponseHead[];
  /** Each handler call in order: 'head', 'body <latin1 bytes>', 'end'. */
  events: string[];
  body: string;
  error: string | undefined;
}

/** Runs latin1 `parts`, one push each, through a new parser; a parse error ends the run. */
function parse(
  parts: string | string[],
  { method = 'GET', maxHeadBytes, close = false }: Options = {},
): Outcome {
  const outcome: Outcome = { heads: [], events: [], body: '', error: undefined };
  const parser = new ResponseParser(method, recorder(outcome), maxHeadBytes);
  try {
    for (const part of typeof parts === 'string' ? [parts] : parts) parser.push(Buffer.from(part, 'latin1'));
    if (close) parser.close();
  } catch (error) {
    if (!(error instanceof HttpParseError)) throw error;
    outcome.error = error.message;
  }
  return outcome;
}

function recorder(outcome: Outcome) {
  return {
    head(received: ResponseHead) {
      outcome.heads.push(received);
      outcome.events.push('head');
    },
    body(chunk: Buffer) {
      assert.ok(chunk.length > 0, 'a body chunk is never empty');
      outcome.body += chunk.toString('latin1');
      outcome.events.push(`body ${chunk.toString('latin1')}`);
    },
    end() {
      outcome.events.push('end');
    },
  };
}

/** Parses a response that must be accepted, returning its single head. */
function accepted(input: string | string[], options: Options = {}): { head: ResponseHead; outcome: Outcome } {
  const outcome = parse(input, options);
  assert.is(outcome.error, undefined);
  assert.is(outcome.heads.length, 1);
  return { head: outcome.heads[0]!, outcome };
}

const errorOf = (input: string | string[], options: Options = {}): string | undefined =>
  parse(input, options).error;

const CL0 = 'Content-Length: 0';

// Status line

for (const [line, minorVersion, status, reason] of [
  ['HTTP/1.1 200 OK', 1, 200, 'OK'],
  ['HTTP/1.0 404 Not Found', 0, 404, 'Not Found'],
  ['HTTP/1.1 200', 1, 200, ''],
  ['HTTP/1.1 200 ', 1, 200, ''],
  ['HTTP/1.1 599 x', 1, 599, 'x'],
  ['HTTP/1.1 200  two  spaces ', 1, 200, ' two  spaces '],
  ['HTTP/1.1 200 tab\there, obs-text \xe9\xff !~', 1, 200, 'tab\there, obs-text \xe9\xff !~'],
] as const) {
  test(`status line accepted: ${JSON.stringify(line)}`, () => {
    const { head: received } = accepted(head(line, CL0));
    assert.equal([received.minorVersion, received.status, received.reason], [minorVersion, status, reason]);
  });
}

for (const [line, message] of [
  ['HTTP/1.2 200 OK', 'invalid status line'],
  ['HTTP/2.0 200 OK', 'invalid status line'],
  ['HTTP/1.10 200 OK', 'invalid status line'],
  ['http/1.1 200 OK', 'invalid status line'],
  ['HTTP/1.1  200 OK', 'invalid status line'],
  ['HTTP/1.1\t200 OK', 'invalid status line'],
  ['HTTP/1.1 200\tOK', 'invalid status line'],
  [' HTTP/1.1 200 OK', 'invalid status line'],
  ['HTTP/1.1 20 OK', 'invalid status line'],
  ['HTTP/1.1 2000 OK', 'invalid status line'],
  ['HTTP/1.1 2x0 OK', 'invalid status line'],
  ['HTTP/1.1 +20 OK', 'invalid status line'],
  ['HTTP/1.1 099 Too low', 'invalid status code'],
  ['HTTP/1.1 600 Too high', 'invalid status code'],
  ['HTTP/1.1 000', 'invalid status code'],
  ['HTTP/1.1 200 O\x00K', 'invalid reason phrase'],
  ['HTTP/1.1 200 O\x7fK', 'invalid reason phrase'],
  ['HTTP/1.1 200 O\rK', 'invalid reason phrase'],
  ['HTTP/1.1 200 O\x0bK', 'invalid reason phrase'],
  ['HTTP/1.1 101 Switching Protocols', 'unexpected 101 switching protocols'],
] as const) {
  test(`status line rejected: ${JSON.stringify(line)}`, () => {
    assert.is(errorOf(head(line, CL0)), message);
  });
}

test('an empty line before the status line is rejected', () => {
  assert.is(errorOf('\r\n' + head('HTTP/1.1 200 OK', CL0)), 'invalid status line');
});

// Line endings

for (const [title, input, message] of [
  ['after the status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare lf in line ending'],
  ['after a field line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n', 'bare lf in line ending'],
  ['as the end of the head', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n', 'bare lf in line ending'],
  ['as the first byte', '\nHTTP/1.1 200 OK\r\n\r\n', 'bare lf in line ending'],
  ['inside a field value', 'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n', 'invalid field value'],
  ['ending a field line', 'HTTP/1.1 200 OK\r\nX: a\r\rContent-Length: 0\r\n\r\n', 'invalid field value'],
  ['before a colon', 'HTTP/1.1 200 OK\r\nX\r: a\r\nContent-Length: 0\r\n\r\n', 'invalid field name'],
  ['in a blank line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\r\n', 'invalid field line'],
] as const) {
  test(`a bare LF or CR ${title} is rejected`, () => {
    assert.is(errorOf(input), message);
  });
}

// Field lines

test('fields keep their order, duplicates and the names as sent; values lose surrounding SP and HTAB', () => {
  const { head: received } = accepted(
    head(
      'HTTP/1.1 200 OK',
      "Name-With_all.tchar!#$%&'*+^`|~09az: v",
      'X-Dup: 1',
      'x-dup: 2',
      'Empty:',
      'Spaces: \t a \t b \t ',
      'Colons: a:b: c',
      'Latin1: caf\xe9 \x80\xff',
      CL0,
    ),
  );
  assert.equal(received.fields, [
    ["Name-With_all.tchar!#$%&'*+^`|~09az", 'v'],
    ['X-Dup', '1'],
    ['x-dup', '2'],
    ['Empty', ''],
    ['Spaces', 'a \t b'],
    ['Colons', 'a:b: c'],
    ['Latin1', 'caf\xe9 \x80\xff'],
    ['Content-Length', '0'],
  ]);
});

for (const [line, message] of [
  [' X: folded onto the status line', 'obsolete line folding'],
  ['\tX: folded onto the status line', 'obsolete line folding'],
  ['Name : v', 'invalid field name'],
  ['Name\t: v', 'invalid field name'],
  [': no name', 'invalid field name'],
  ['Na(me): v', 'invalid field name'],
  ['Na\xe9me: v', 'invalid field name'],
  ['Na\x00me: v', 'invalid field name'],
  ['no colon at all', 'invalid field line'],
  ['X: nul \x00', 'invalid field value'],
  ['X: soh \x01', 'invalid field value'],
  ['X: vt \x0b', 'invalid field value'],
  ['X: esc \x1b', 'invalid field value'],
  ['X: del \x7f', 'invalid field value'],
] as const) {
  test(`field line rejected: ${JSON.stringify(line)}`, () => {
    assert.is(errorOf(head('HTTP/1.1 200 OK', line, CL0)), message);
  });
}

test('a continuation line after a field is rejected as obs-fold', () => {
  assert.is(errorOf(head('HTTP/1.1 200 OK', 'X: a', ' b', CL0)), 'obsolete line folding');
  assert.is(errorOf(head('HTTP/1.1 200 OK', 'X: a', '\tb', CL0)), 'obsolete line folding');
});

// Size limits

/** A head of exactly `size` bytes, padded in a field value. */
function headOfSize(size: number, status = 'HTTP/1.1 200 OK'): string {
  const bare = head(status, CL0, 'X: ');
  return head(status, CL0, `X: ${'a'.repeat(size - bare.length)}`);
}

test('a head of exactly maxHeadBytes is accepted, one byte more is not', () => {
  assert.is(headOfSize(100).length, 100);
  accepted(headOfSize(100), { maxHeadBytes: 100 });
  assert.is(errorOf(headOfSize(101), { maxHeadBytes: 100 }), 'response head exceeds 100 bytes');
});

test('the default head limit is 16384 bytes', () => {
  accepted(headOfSize(16384));
  assert.is(errorOf(headOfSize(16385)), 'response head exceeds 16384 bytes');
});

test('an oversized head fails by its limit, without waiting for its end', () => {
  const parser = new ResponseParser('GET', recorder(parse([])), 64);
  let received = 0;
  assert.throws(() => {
    for (const byte of Buffer.from('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(1000))) {
      received += 1;
      parser.push(Buffer.of(byte));
    }
  }, /response head exceeds 64 bytes/);
  assert.ok(received <= 64, `failed after ${received} bytes`);
});

test('a field line that ends at the limit leaves no room for the end of the head', () => {
  const parser = new ResponseParser('GET', recorder(parse([])), 64);
  parser.push(Buffer.from(headOfSize(66).slice(0, -2)));
  assert.throws(() => parser.push(Buffer.from('\r')), /response head exceeds 64 bytes/);
});

test('each interim head has the limit to itself', () => {
  const interim = headOfSize(100, 'HTTP/1.1 103 Early Hints');
  accepted(interim + headOfSize(100), { maxHeadBytes: 100 });
  assert.is(errorOf(interim + headOfSize(101), { maxHeadBytes: 100 }), 'response head exceeds 100 bytes');
});

test('maxHeadBytes must be a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => new ResponseParser('GET', recorder(parse([])), bad), RangeError);
  }
});

// Interim responses

test('interim responses are skipped, fields and all; the final response follows', () => {
  const { outcome, head: received } = accepted(
    head('HTTP/1.1 100 Continue') +
      head('HTTP/1.1 102 Processing', 'X-Interim: 1') +
      head(
        'HTTP/1.1 103 Early Hints',
        'Link: </a>; rel=preload',
        'Content-Length: 5',
        'Transfer-Encoding: chunked',
      ) +
      head('HTTP/1.0 199 Whatever') +
      head('HTTP/1.1 200 OK', 'Content-Length: 2') +
      'ok',
  );
  assert.is(received.status, 200);
  assert.equal(received.fields, [['Content-Length', '2']]);
  assert.equal(outcome.events, ['head', 'body ok', 'end']);
});

test('interim heads are held to the same rules', () => {
  assert.is(
    errorOf(head('HTTP/1.1 103 Early', 'X : y') + head('HTTP/1.1 200 OK', CL0)),
    'invalid field name',
  );
  assert.is(errorOf('HTTP/1.1 100 Continue\n\r\n' + head('HTTP/1.1 200 OK', CL0)), 'bare lf in line ending');
});

test('101 Switching Protocols is rejected, after an interim response too', () => {
  assert.is(
    errorOf(head('HTTP/1.1 100 Continue') + head('HTTP/1.1 101 Switching')),
    'unexpected 101 switching protocols',
  );
});

test('EOF after an interim response is an incomplete response', () => {
  const outcome = parse(head('HTTP/1.1 100 Continue'), { close: true });
  assert.is(outcome.error, 'connection closed before the response ended');
  assert.equal(outcome.events, []);
});

// Responses without a body

for (const [title, method, status] of [
  ['a response to HEAD', 'HEAD', 'HTTP/1.1 200 OK'],
  ['204', 'GET', 'HTTP/1.1 204 No Content'],
  ['304', 'GET', 'HTTP/1.1 304 Not Modified'],
] as const) {
  test(`${title} has no body, whatever its Content-Length or Transfer-Encoding say`, () => {
    for (const field of ['Content-Length: 5', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip']) {
      const { outcome, head: received } = accepted(head(status, field), { method });
      assert.equal(outcome.events, ['head', 'end'], field);
      assert.is(received.keepAlive, true, field);
      assert.is(received.bodiless, true, field);
    }
    assert.is(
      errorOf(head(status, 'Content-Length: 5') + 'hello', { method }),
      'data after the end of the response',
    );
  });
}

test('methods are case-sensitive: a response to "head" has a body', () => {
  const { outcome, head: received } = accepted(head('HTTP/1.1 200 OK', 'Content-Length: 2') + 'ok', {
    method: 'head',
  });
  assert.equal(outcome.events, ['head', 'body ok', 'end']);
  assert.is(received.bodiless, false);
});

test('a response with no body does not keep alive on doubtful framing', () => {
  const both = head('HTTP/1.1 204 No Content', 'Content-Length: 0', 'Transfer-Encoding: chunked');
  assert.is(accepted(both).head.keepAlive, false);
  const http10 = head('HTTP/1.0 200 OK', 'Connection: keep-alive', 'Transfer-Encoding: chunked');
  assert.is(accepted(http10, { method: 'HEAD' }).head.keepAlive, false);
  assert.is(accepted(head('HTTP/1.0 304 Not Modified', 'Connection: keep-alive')).head.keepAlive, true);
});

test('Content-Length is checked in a response without a body too', () => {
  assert.is(errorOf(head('HTTP/1.1 204 No Content', 'Content-Length: x')), 'invalid content-length');
  assert.is(
    errorOf(head('HTTP/1.1 200 OK', 'Content-Length: 1, 2'), { method: 'HEAD' }),
    'invalid content-length',
  );
});

test('a request method of CONNECT is refused, as its success is a tunnel', () => {
  assert.throws(() => new ResponseParser('CONNECT', recorder(parse([]))), RangeError);
});

// Content-Length

test('Content-Length frames the body', () => {
  const { outcome, head: received } = accepted(head('HTTP/1.1 200 OK', 'Content-Length: 5') + 'hello');
  assert.equal(outcome.events, ['head', 'body hello', 'end']);
  assert.is(received.keepAlive, true);
});

test('Content-Length 0 ends the response with its head', () => {
  assert.equal(accepted(head('HTTP/1.1 200 OK', 'Content-Length: 0')).outcome.events, ['head', 'end']);
});

for (const fields of [
  ['Content-Length: 5', 'Content-Length: 5'],
  ['Content-Length: 5, 5'],
  ['Content-Length: 5,5', 'content-length:\t5 \t, 5\t'],
  ['Content-Length: 005, 5'],
  ['CONTENT-LENGTH: 5'],
]) {
  test(`Content-Length accepted: ${JSON.stringify(fields)}`, () => {
    assert.is(accepted(head('HTTP/1.1 200 OK', ...fields) + 'hello').outcome.body, 'hello');
  });
}

for (const [fields, message] of [
  [['Content-Length: 5', 'Content-Length: 6'], 'invalid content-length'],
  [['Content-Length: 5, 6'], 'invalid content-length'],
  [['Content-Length: 5', 'Content-Length: 5, 6'], 'invalid content-length'],
  [['Content-Length: 5,'], 'invalid content-length'],
  [['Content-Length: ,5'], 'invalid content-length'],
  [['Content-Length:'], 'invalid content-length'],
  [['Content-Length: -1'], 'invalid content-length'],
  [['Content-Length: +5'], 'invalid content-length'],
  [['Content-Length: 5.0'], 'invalid content-length'],
  [['Content-Length: 0x5'], 'invalid content-length'],
  [['Content-Length: 1e3'], 'invalid content-length'],
  [['Content-Length: 5 5'], 'invalid content-length'],
  [['Content-Length: "5"'], 'invalid content-length'],
  [['Content-Length: 5\xa0'], 'invalid content-length'],
  [['Content-Length: 5,\xa05'], 'invalid content-length'],
  [['Content-Length: 9007199254740992'], 'content-length too large'],
  [['Content-Length: 100000000000000000000000000000'], 'content-length too large'],
] as const) {
  test(`Content-Length rejected: ${JSON.stringify(fields)}`, () => {
    assert.is(errorOf(head('HTTP/1.1 200 OK', ...fields) + 'hello'), message);
  });
}

test('the largest safe Content-Length is accepted', () => {
  const outcome = parse(head('HTTP/1.1 200 OK', 'Content-Length: 9007199254740991') + 'abc');
  assert.is(outcome.error, undefined);
  assert.equal(outcome.events, ['head', 'body abc']);
});

test('a field whose name only starts with Content-Length is no length', () => {
  const { outcome, head: received } = accepted(head('HTTP/1.1 200 OK', 'Content-Length-X: 1') + 'abc', {
    close: true,
  });
  assert.is(outcome.body, 'abc');
  assert.is(received.keepAlive, false);
});

// Transfer-Encoding

const CHUNKED_BODY = '5\r\nhello\r\n0\r\n\r\n';

for (const fields of [
  ['Transfer-Encoding: chunked'],
  ['Transfer-Encoding: Chunked'],
  ['transfer-encoding: CHUNKED'],
  ['Transfer-Encoding: \t chunked \t'],
  ['Transfer-Encoding: , chunked ,'],
  ['Transfer-Encoding: ,', 'Transfer-Encoding: chunked'],
]) {
  test(`Transfer-Encoding accepted as chunked: ${JSON.stringify(fields)}`, () => {
    const { outcome, head: received } = accepted(head('HTTP/1.1 200 OK', ...fields) + CHUNKED_BODY);
    assert.equal(outcome.events, ['head', 'body hello', 'end']);
    assert.is(received.keepAlive, true);
  });
}

for (const fields of [
  ['Transfer-Encoding: gzip'],
  ['Transfer-Encoding: identity'],
  ['Transfer-Encoding: gzip, chunked'],
  ['Transfer-Encoding: chunked, gzip'],
  ['Transfer-Encoding: chunked, chunked'],
  ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
  ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
  ['Transfer-Encoding: chunked;q=1'],
  ['Transfer-Encoding: chunked x'],
  ['Transfer-Encoding: xchunked'],
  ['Transfer-Encoding: "chunked"'],
  ['Transfer-Encoding:'],
  ['Transfer-Encoding: , ,'],
]) {
  test(`Transfer-Encoding rejected: ${JSON.stringify(fields)}`, () => {
    assert.is(errorOf(head('HTTP/1.1 200 OK', ...fields) + CHUNKED_BODY), 'unsupported transfer coding');
  });
}

test('Transfer-Encoding in an HTTP/1.0 response is faulty framing', () => {
  const input = head('HTTP/1.0 200 OK', 'Transfer-Encoding: chunked') + CHUNKED_BODY;
  assert.is(errorOf(input), 'transfer-encoding in an http/1.0 response');
  assert.is(
    errorOf(head('HTTP/1.0 200 OK', 'Transfer-Encoding: gzip')),
    'transfer-encoding in an http/1.0 response',
  );
});

test('Transfer-Encoding with Content-Length is refused: two framings for one body', () => {
  for (const fields of [
    ['Transfer-Encoding: chunked', 'Content-Length: 3'],
    ['Content-Length: 300', 'Transfer-Encoding: chunked'],
  ]) {
    const outcome = parse([head('HTTP/1.1 200 OK', ...fields) + CHUNKED_BODY]);
    assert.is(outcome.error, 'transfer-encoding with content-length', fields.join());
    assert.equal(outcome.events, [], fields.join());
  }
});

// Close-delimited bodies

test('without a length, the body runs until EOF and the connection does not keep alive', () => {
  const outcome = parse([head('HTTP/1.1 200 OK', 'Connection: keep-alive') + 'ab', 'cd', 'e'], {
    close: true,
  });
  assert.is(outcome.error, undefined);
  assert.equal(outcome.events, ['head', 'body ab', 'body cd', 'body e', 'end']);
  assert.is(outcome.heads[0]!.keepAlive, false);
});

test('a close-delimited body may be empty', () => {
  assert.equal(accepted(head('HTTP/1.0 200 OK'), { close: true }).outcome.events, ['head', 'end']);
});

test('close() before or during a message is an incomplete response', () => {
  for (const input of [
    '',
    'HTTP/1.1 200',
    'HTTP/1.1 200 OK\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n',
    head('HTTP/1.1 200 OK', 'Content-Length: 5') + 'hell',
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'),
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '5\r',
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '5\r\nhel',
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '5\r\nhello',
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '5\r\nhello\r',
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '0\r\n',
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '0\r\nX: y\r\n',
  ]) {
    const outcome = parse(input, { close: true });
    assert.is(outcome.error, 'connection closed before the response ended', JSON.stringify(input));
    assert.not.ok(outcome.events.includes('end'), JSON.stringify(input));
  }
});

test('close() after the end does nothing', () => {
  const outcome: Outcome = { heads: [], events: [], body: '', error: undefined };
  const parser = new ResponseParser('GET', recorder(outcome));
  assert.is(parser.ended, false);
  parser.push(Buffer.from(head('HTTP/1.1 200 OK') + 'x'));
  assert.is(parser.ended, false);
  parser.close();
  assert.is(parser.ended, true);
  parser.close();
  assert.equal(outcome.events, ['head', 'body x', 'end']);
});

// Chunked bodies

const chunked = (body: string, options: Options = {}): Outcome =>
  parse(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + body, options);

for (const [body, decoded] of [
  ['5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', 'hello world'],
  ['a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n', '0123456789abcdefghij'],
  ['000a\r\n0123456789\r\n000\r\n\r\n', '0123456789'],
  ['0000000000003\r\nabc\r\n0\r\n\r\n', 'abc'],
  ['3;name=value\r\nabc\r\n0;last\r\n\r\n', 'abc'],
  ['3;\r\nabc\r\n0\r\n\r\n', 'abc'],
  ['3;a="b; c"\t;x=\xe9\x80 \r\nabc\r\n0\r\n\r\n', 'abc'],
  ['3\r\nabc\r\n0\r\nTrailer: value\r\nOther:\r\n\r\n', 'abc'],
  ['0\r\n\r\n', ''],
] as const) {
  test(`chunked body accepted: ${JSON.stringify(body)}`, () => {
    const outcome = chunked(body);
    assert.is(outcome.error, undefined);
    assert.is(outcome.body, decoded);
    assert.equal(outcome.events.at(-1), 'end');
  });
}

test('the largest chunk size, 13 hex digits, parses without loss', () => {
  const outcome = chunked('fffffffffffff\r\nabc');
  assert.is(outcome.error, undefined);
  assert.equal(outcome.events, ['head', 'body abc']);
});

for (const [body, message] of [
  ['\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['g\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['-5\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['0x5\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  [' 5\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['5 \r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['5 ;ext\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['5\t;ext\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['00000000000005\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['10000000000000\r\nhello\r\n0\r\n\r\n', 'invalid chunk size'],
  ['5;a\x00\r\nhello\r\n0\r\n\r\n', 'invalid chunk extension'],
  ['5;a\x7f\r\nhello\r\n0\r\n\r\n', 'invalid chunk extension'],
  ['5;a\rb\r\nhello\r\n0\r\n\r\n', 'invalid chunk extension'],
  ['5\nhello\r\n0\r\n\r\n', 'bare lf in line ending'],
  ['5\r\nhellox\r\n0\r\n\r\n', 'missing crlf after chunk data'],
  ['5\r\nhello\n0\r\n\r\n', 'missing crlf after chunk data'],
  ['5\r\nhello\r\r\n0\r\n\r\n', 'missing crlf after chunk data'],
  ['5\r\nhello0\r\n\r\n', 'missing crlf after chunk data'],
  ['0\r\n\n', 'bare lf in line ending'],
  ['0\r\nX: y\n\r\n', 'bare lf in line ending'],
  ['0\r\n folded: trailer\r\n\r\n', 'obsolete line folding'],
  ['0\r\nno colon\r\n\r\n', 'invalid field line'],
  ['0\r\nBad Name: v\r\n\r\n', 'invalid field name'],
  ['0\r\nX: \x00\r\n\r\n', 'invalid field value'],
] as const) {
  test(`chunked body rejected: ${JSON.stringify(body)}`, () => {
    assert.is(chunked(body).error, message);
  });
}

test('a chunk size line and the trailer section are held to maxHeadBytes', () => {
  const base = head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked');
  const options = { maxHeadBytes: 64 };
  const sizeLine = (length: number) => `1;${'e'.repeat(length - 4)}\r\n`;
  assert.is(parse(base + sizeLine(64) + 'x\r\n0\r\n\r\n', options).error, undefined);
  assert.is(parse(base + sizeLine(65) + 'x\r\n0\r\n\r\n', options).error, 'chunk line exceeds 64 bytes');
  const trailers = (size: number) => `X: ${'t'.repeat(size - 7)}\r\n\r\n`;
  assert.is(parse(base + '0\r\n' + trailers(64), options).error, undefined);
  assert.is(parse(base + '0\r\n' + trailers(65), options).error, 'trailer section exceeds 64 bytes');
  assert.is(parse(base + '0\r\n' + 'X: y\r\n'.repeat(11), options).error, 'trailer section exceeds 64 bytes');
});

const isViewOf = (chunk: Buffer, buffer: Buffer): boolean =>
  chunk.buffer === buffer.buffer &&
  chunk.byteOffset >= buffer.byteOffset &&
  chunk.byteOffset + chunk.length <= buffer.byteOffset + buffer.length;

/** Parses `parts`, checking that each body chunk is a view of the buffer pushed, not a copy. */
function parseCheckingViews(parts: string[]): Outcome {
  const outcome: Outcome = { heads: [], events: [], body: '', error: undefined };
  const record = recorder(outcome);
  let pushed = Buffer.alloc(0);
  const parser = new ResponseParser('GET', {
    ...record,
    body(chunk) {
      assert.ok(isViewOf(chunk, pushed), 'the chunk is a view, not a copy');
      record.body(chunk);
    },
  });
  for (const part of parts) {
    pushed = Buffer.from(part);
    parser.push(pushed);
  }
  parser.close();
  return outcome;
}

test('body bytes are handed on as they arrive, as views of the pushed buffer', () => {
  const chunkedParts = [
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + 'a\r\n012',
    '3456',
    '789\r\n0\r\n\r\n',
  ];
  const lengthParts = [head('HTTP/1.1 200 OK', 'Content-Length: 10') + '012', '3456', '789'];
  const closeParts = [head('HTTP/1.1 200 OK') + '012', '3456', '789'];
  for (const parts of [chunkedParts, lengthParts, closeParts]) {
    const outcome = parseCheckingViews(parts);
    assert.equal(outcome.events, ['head', 'body 012', 'body 3456', 'body 789', 'end'], parts[0]);
  }
});

test('no view of a pushed buffer is kept: the caller may reuse it', () => {
  const outcome: Outcome = { heads: [], events: [], body: '', error: undefined };
  const parser = new ResponseParser('GET', recorder(outcome));
  const input =
    head('HTTP/1.1 200 OK', 'X-Long: 0123456789', 'Transfer-Encoding: chunked') +
    '3;ext\r\nabc\r\n0\r\nT: 1\r\n\r\n';
  const reused = Buffer.alloc(7);
  for (let at = 0; at < input.length; at += reused.length) {
    const length = reused.write(input.slice(at, at + reused.length), 'latin1');
    parser.push(reused.subarray(0, length));
    reused.fill('!');
  }
  assert.is(outcome.heads[0]!.fields[0]![1], '0123456789');
  assert.is(outcome.body, 'abc');
  assert.is(parser.ended, true);
});

// keepAlive

for (const [lines, keepAlive] of [
  [['HTTP/1.1 200 OK', CL0], true],
  [['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'], true],
  [['HTTP/1.1 200 OK', CL0, 'Connection: close'], false],
  [['HTTP/1.1 200 OK', CL0, 'Connection: Keep-Alive, CLOSE'], false],
  [['HTTP/1.1 200 OK', CL0, 'Connection: upgrade', 'connection:\tfoo ,close\t'], false],
  [['HTTP/1.1 200 OK', CL0, 'Connection: closed'], true],
  [['HTTP/1.1 200 OK', CL0, 'Connection: upgrade'], true],
  [['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Connection: close'], false],
  [['HTTP/1.0 200 OK', CL0], false],
  [['HTTP/1.0 200 OK', CL0, 'Connection: keep-alive'], true],
  [['HTTP/1.0 200 OK', CL0, 'Connection: foo , Keep-Alive'], true],
  [['HTTP/1.0 200 OK', CL0, 'Connection: keep-alive, close'], false],
  [['HTTP/1.0 200 OK', CL0, 'Connection: keep-alive-ish'], false],
] as const) {
  test(`keepAlive ${keepAlive}: ${JSON.stringify(lines)}`, () => {
    const isChunked = lines.some((line) => line.startsWith('Transfer-Encoding'));
    assert.is(accepted(head(...lines) + (isChunked ? '0\r\n\r\n' : '')).head.keepAlive, keepAlive);
  });
}

// After the end, after an error

test('data after the end is an error, even in the push that ended the response', () => {
  const outcome = parse(head('HTTP/1.1 200 OK', 'Content-Length: 1') + 'xy');
  assert.equal(outcome.events, ['head', 'body x', 'end']);
  assert.is(outcome.error, 'data after the end of the response');
  const chunkedThenMore = chunked(CHUNKED_BODY + '\r\n');
  assert.is(chunkedThenMore.error, 'data after the end of the response');
});

test('a push after the end is an error; an empty one is not', () => {
  const parser = new ResponseParser('GET', recorder(parse([])));
  parser.push(Buffer.from(head('HTTP/1.1 200 OK', CL0)));
  assert.is(parser.ended, true);
  parser.push(Buffer.alloc(0));
  assert.throws(() => parser.push(Buffer.from('H')), /data after the end of the response/);
});

test('after an error the parser is dead: every call throws the same error and calls no handler', () => {
  const outcome: Outcome = { heads: [], events: [], body: '', error: undefined };
  const parser = new ResponseParser('GET', recorder(outcome));
  parser.push(Buffer.from('HTTP/1.1 200 OK\r\n'));
  let first: unknown;
  try {
    parser.push(Buffer.from('Bad Name: x\r\n'));
  } catch (error) {
    first = error;
  }
  assert.instance(first, HttpParseError);
  assert.is((first as Error).name, 'HttpParseError');
  for (const call of [
    () => parser.push(Buffer.from('Content-Length: 0\r\n\r\n')),
    () => parser.push(Buffer.alloc(0)),
    () => parser.close(),
  ]) {
    try {
      call();
      assert.unreachable('should have thrown');
    } catch (error) {
      assert.is(error, first);
    }
  }
  assert.equal(outcome.events, []);
});

test('a handler that throws is not caught; the parser stays dead with that error', () => {
  const failure = new Error('handler failed');
  const parser = new ResponseParser('GET', {
    head() {},
    body() {
      throw failure;
    },
    end() {},
  });
  try {
    parser.push(Buffer.from(head('HTTP/1.1 200 OK', 'Content-Length: 2') + 'ok'));
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.is(error, failure);
  }
  assert.throws(
    () => parser.close(),
    (error: unknown) => error === failure,
  );
});

// Any split of the input

/** Mulberry32: a small seeded PRNG, so that random splits are the same in every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits of `input`: one byte per push, every cut into two, and `randomCount` random cuttings. */
function splitsOf(input: string, random: () => number, randomCount = 25): string[][] {
  const splits = [[...input]];
  for (let cut = 1; cut < input.length; cut++) splits.push([input.slice(0, cut), input.slice(cut)]);
  for (let i = 0; i < randomCount; i++) {
    const parts: string[] = [];
    for (let at = 0; at < input.length;) {
      const length = 1 + Math.floor(random() * Math.min(input.length, 40));
      parts.push(input.slice(at, at + length));
      at += length;
    }
    splits.push(parts);
  }
  return splits;
}

/** An outcome with consecutive body chunks merged, as it must not depend on how the input was cut. */
function merged(outcome: Outcome) {
  const events = outcome.events.map((event) => (event.startsWith('body ') ? 'body' : event));
  return {
    heads: outcome.heads,
    events: events.filter((event, i) => event !== 'body' || events[i - 1] !== 'body'),
    body: outcome.body,
    error: outcome.error,
  };
}

const validResponses: [string, Options][] = [
  [head('HTTP/1.1 200 OK', 'Content-Type: application/json', 'Content-Length: 13') + '{"jsonrpc":1}', {}],
  [head('HTTP/1.1 200 OK', 'Content-Length: 0'), {}],
  [head('HTTP/1.1 200'), { close: true }],
  [head('HTTP/1.0 200 OK', 'Connection: keep-alive', 'Content-Length: 4') + 'data', {}],
  [head('HTTP/1.0 500 Oops') + 'close-delimited\r\nbody', { close: true }],
  [
    head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'X: \t spaced \t') +
      '5;ext="a b"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: t\r\n\r\n',
    {},
  ],
  [
    head('HTTP/1.1 100 Continue') +
      head('HTTP/1.1 103 Early', 'Link: </x>') +
      head('HTTP/1.1 201 Created', 'Content-Length: 2') +
      'ok',
    {},
  ],
  [head('HTTP/1.1 200 OK', 'Content-Length: 100'), { method: 'HEAD' }],
  [head('HTTP/1.1 304 Not Modified', 'Transfer-Encoding: chunked'), {}],
  [head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '3\r\n\r\n\r\r\n0\r\n\r\n', {}],
];

test('any split of a valid response yields the same head, body and a single end', () => {
  const random = prng(0x5eed);
  for (const [input, options] of validResponses) {
    const reference = merged(parse(input, options));
    assert.is(reference.error, undefined, input);
    assert.is(reference.events.filter((event) => event === 'end').length, 1, input);
    assert.is(reference.events.at(-1), 'end', input);
    for (const parts of splitsOf(input, random)) {
      assert.equal(merged(parse(parts, options)), reference, JSON.stringify(parts));
    }
  }
});

const invalidResponses: [string, Options][] = [
  ['HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', {}],
  [head('HTTP/1.1 200 OK', 'X: a\x00b', CL0), {}],
  [head('HTTP/1.1 200 OK', 'X: ' + 'a'.repeat(40), CL0), { maxHeadBytes: 48 }],
  [head('HTTP/1.1 200 OK', 'X: ' + 'a'.repeat(40) + '\x00', CL0), { maxHeadBytes: 48 }],
  [head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '5\r\nhello\r\n5;\x01\r\n', {}],
  [head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked') + '5\r\nhelloX\r\n', {}],
  [head('HTTP/1.1 200 OK', 'Content-Length: 2') + 'ok\r\n', {}],
  [head('HTTP/1.1 200 OK', 'Content-Length: 20') + 'short', { close: true }],
];

test('any split of an invalid response yields the same error after the same events', () => {
  const random = prng(0xbad);
  for (const [input, options] of invalidResponses) {
    const reference = merged(parse(input, options));
    assert.type(reference.error, 'string', input);
    for (const parts of splitsOf(input, random)) {
      assert.equal(merged(parse(parts, options)), reference, JSON.stringify(parts));
    }
  }
});

test.run();
