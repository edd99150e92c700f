import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { JSONRPCMessageSchema, LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import {
  isInitializeRequest,
  readMessages,
  refuseGetHeaders,
  refusePostHeaders,
  refuseProtocolVersion,
  sseEvent,
} from '../../src/downstream/wire.js';

const JSON_AND_SSE = 'application/json, text/event-stream';

test('a POST must accept JSON and SSE and carry JSON', () => {
  assert.is(refusePostHeaders({ accept: JSON_AND_SSE, 'content-type': 'application/json' }), undefined);
  assert.is(
    refusePostHeaders({ accept: JSON_AND_SSE, 'content-type': 'Application/JSON; charset=utf-8' }),
    undefined,
  );
  assert.is(
    refusePostHeaders({ accept: 'application/json', 'content-type': 'application/json' })?.status,
    406,
  );
  assert.is(refusePostHeaders({ 'content-type': 'application/json' })?.status, 406);
  assert.is(refusePostHeaders({ accept: JSON_AND_SSE, 'content-type': 'text/plain' })?.status, 415);
  // A parameter that mentions JSON does not make the media type JSON.
  assert.is(
    refusePostHeaders({ accept: JSON_AND_SSE, 'content-type': 'text/plain; a=application/json' })?.status,
    415,
  );
  assert.is(refusePostHeaders({ accept: JSON_AND_SSE })?.status, 415);
});

test('a GET must accept SSE', () => {
  assert.is(refuseGetHeaders({ accept: 'text/event-stream' }), undefined);
  assert.is(refuseGetHeaders({ accept: 'application/json' })?.status, 406);
  assert.is(refuseGetHeaders({})?.status, 406);
});

test('a known protocol version, or none, passes; an unknown one is 400', () => {
  assert.is(refuseProtocolVersion({}), undefined);
  assert.is(refuseProtocolVersion({ 'mcp-protocol-version': LATEST_PROTOCOL_VERSION }), undefined);
  assert.is(refuseProtocolVersion({ 'mcp-protocol-version': '2024-11-05' }), undefined);
  const refused = refuseProtocolVersion({ 'mcp-protocol-version': '1999-01-01' });
  assert.is(refused?.status, 400);
  assert.match(refused!.message, 'Unsupported protocol version: 1999-01-01');
});

// Every value here is judged by the SDK's own schema too: the hand-written check must agree with it.
const agreed: [string, unknown][] = [
  ['request', { jsonrpc: '2.0', id: 1, method: 'ping' }],
  ['request with a string id and params', { jsonrpc: '2.0', id: 'a', method: 'tools/list', params: {} }],
  [
    'request with a progress token',
    { jsonrpc: '2.0', id: 2, method: 'x', params: { _meta: { progressToken: 't' } } },
  ],
  ['notification', { jsonrpc: '2.0', method: 'notifications/initialized' }],
  ['result', { jsonrpc: '2.0', id: 3, result: {} }],
  ['error', { jsonrpc: '2.0', id: 4, error: { code: -1, message: 'no' } }],
  ['error without id', { jsonrpc: '2.0', error: { code: -1, message: 'no', data: [1] } }],
  ['wrong version', { jsonrpc: '1.0', id: 1, method: 'ping' }],
  ['no version', { id: 1, method: 'ping' }],
  ['method not a string', { jsonrpc: '2.0', id: 1, method: 7 }],
  ['object id', { jsonrpc: '2.0', id: { a: 1 }, method: 'ping' }],
  ['fractional id', { jsonrpc: '2.0', id: 1.5, method: 'ping' }],
  ['null id', { jsonrpc: '2.0', id: null, method: 'ping' }],
  ['params a string', { jsonrpc: '2.0', id: 1, method: 'ping', params: 'x' }],
  ['params an array', { jsonrpc: '2.0', id: 1, method: 'ping', params: [1] }],
  ['unknown key', { jsonrpc: '2.0', id: 1, method: 'ping', extra: true }],
  ['result and method', { jsonrpc: '2.0', id: 1, method: 'ping', result: {} }],
  ['result not an object', { jsonrpc: '2.0', id: 1, result: 5 }],
  ['result without id', { jsonrpc: '2.0', result: {} }],
  ['error code not an integer', { jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'no' } }],
  ['_meta not an object', { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: 5 } }],
  [
    'progress token an object',
    { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: { progressToken: {} } } },
  ],
  ['an id beyond the safe integers', { jsonrpc: '2.0', id: 2 ** 53, method: 'ping' }],
  [
    'a progress token beyond them',
    { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: { progressToken: -(2 ** 60) } } },
  ],
  ['a number', 42],
  ['null', null],
];

for (const [what, value] of agreed) {
  test(`messages: ${what} is judged as the SDK's schema judges it`, () => {
    const sdk = JSONRPCMessageSchema.safeParse(value).success;
    const ours = Array.isArray(readMessages(value));
    assert.is(ours, sdk);
  });
}

test('a batch is read whole or refused whole', () => {
  const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
  assert.equal(readMessages([ping(1), ping(2)]), [ping(1), ping(2)]);
  const empty = readMessages([]);
  assert.ok(!Array.isArray(empty) && empty.status === 400 && empty.code === -32600);
  const flood = readMessages(Array.from({ length: 101 }, (_, i) => ping(i)));
  assert.ok(!Array.isArray(flood) && flood.status === 400 && /must not exceed 100/.test(flood.message));
  const oneBad = readMessages([ping(1), { jsonrpc: '2.0', id: 2 }]);
  assert.ok(!Array.isArray(oneBad) && oneBad.code === -32700);
});

test('initialize is recognised only with what a session starts from', () => {
  const params = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } };
  assert.ok(isInitializeRequest({ jsonrpc: '2.0', id: 1, method: 'initialize', params }));
  assert.not.ok(isInitializeRequest({ jsonrpc: '2.0', method: 'initialize', params }));
  assert.not.ok(isInitializeRequest({ jsonrpc: '2.0', id: 1, method: 'initialize' }));
  assert.not.ok(
    isInitializeRequest({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { ...params, clientInfo: 'c' },
    }),
  );
  assert.not.ok(isInitializeRequest({ jsonrpc: '2.0', id: 1, method: 'ping', params }));
  assert.not.ok(
    isInitializeRequest({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { ...params, clientInfo: {} },
    }),
  );
});

test('an SSE event carries one message on one data line', () => {
  const message = { jsonrpc: '2.0' as const, id: 1, result: { text: 'two\nlines' } };
  const event = sseEvent(message).join('');
  assert.is(event, `event: message\ndata: ${JSON.stringify(message)}\n\n`);
  assert.is(event.split('\n').length, 4);
});

test.run();
