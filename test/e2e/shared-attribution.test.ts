import {
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { connect, fixtureCommand, startProxy, within, type RunningProxy } from '../support/proxy.js';

// A shared child's log lines name no client request: they reach a client only when its call is the only
// one in flight, never every session (docs/decisions/0044-shared-child-attribution.md).

const chatty = fixtureCommand('chatty');
const manifest = `
servers:
  chatty:
    command: ${JSON.stringify(chatty.command)}
    args: ${JSON.stringify(chatty.args)}
`;

const test = suite<{ proxy: RunningProxy }>('shared child attribution', {} as { proxy: RunningProxy });
const clients: Client[] = [];

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
});

test.after(async (ctx) => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await ctx.proxy?.stop();
});

/** A client whose log lines and list changes are recorded as they arrive. */
async function listening(proxy: RunningProxy) {
  const logs: unknown[] = [];
  let listChanged = () => {};
  const changed = new Promise<void>((resolve) => (listChanged = resolve));
  const { client } = await connect(proxy.url, 'chatty', (c) => {
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.data));
    c.setNotificationHandler(ToolListChangedNotificationSchema, () => listChanged());
  });
  clients.push(client);
  return { client, logs, changed };
}

test("while two users have calls in flight, neither gets the other's log lines", async ({ proxy }) => {
  const a = await listening(proxy);
  const b = await listening(proxy);
  let started = () => {};
  const holding = new Promise<void>((resolve) => (started = resolve));
  const held = b.client.callTool({ name: 'hold', arguments: {} }, undefined, { onprogress: () => started() });
  try {
    await within(holding, "b's call to be in flight");
    await a.client.callTool({ name: 'log', arguments: { text: "a's private row" } });
    // Delivered to every session after that log line, on the same stream: once b has it, b had the line too.
    await a.client.callTool({ name: 'announce', arguments: {} });
    await within(b.changed, 'the list change to reach b');
    assert.equal(b.logs, []);
    assert.equal(a.logs, [], 'a cannot be told from b either');
  } finally {
    await a.client.callTool({ name: 'release', arguments: {} });
    await within(held, "b's call to end");
  }
  await a.client.callTool({ name: 'log', arguments: { text: 'only a is busy' } });
  assert.equal(a.logs, ['only a is busy'], 'the one session with a call in flight gets it, with its call');
  assert.equal(b.logs, []);
});

test.run();
