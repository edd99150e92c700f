import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { ClientSession } from '../../src/downstream/client-session.js';
import type { SessionChannel } from '../../src/upstream/channel.js';

// What a session does with a message when the client holds no stream at all: no HTTP response is touched
// on that path, so plain objects stand in for the channel and the endpoint. Streams are tested end to end
// in test/e2e/streamable-http.test.ts.

function sessionWithNoStream() {
  const toUpstream: JSONRPCMessage[] = [];
  const undeliverable: JSONRPCMessage[] = [];
  const channel: SessionChannel = { send: (m) => toUpstream.push(m), close: () => {} };
  const session = new ClientSession('s1', channel, {
    ended: () => {},
    undeliverable: (_, m) => undeliverable.push(m),
    notReading: () => {},
  });
  return { session, toUpstream, undeliverable };
}

test("an upstream's request with no stream to carry it is answered upstream at once, with an error", () => {
  const { session, toUpstream, undeliverable } = sessionWithNoStream();
  const request = { jsonrpc: '2.0', id: 7, method: 'sampling/createMessage', params: {} } as const;
  session.deliver(request, 'call-gone'); // the call it was about has lost its stream too
  assert.equal(toUpstream, [
    {
      jsonrpc: '2.0',
      id: 7,
      error: {
        code: -32603,
        message: 'mcp-proxy: the client has no open stream to receive sampling/createMessage on',
      },
    },
  ]);
  assert.equal(undeliverable, [request], 'and it is logged');
});

test('a notification with no stream is dropped, as the transport allows, and nothing is sent upstream', () => {
  const { session, toUpstream } = sessionWithNoStream();
  session.deliver({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  assert.equal(toUpstream, []);
});

test.run();
