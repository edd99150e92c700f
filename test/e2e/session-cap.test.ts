import { writeFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { heldAuth, heldKeys, OPS_KEY } from '../support/held-keys.js';
import {
  connect,
  fixtureCommand,
  postInitialize,
  startProxy,
  waitFor,
  within,
  type RunningProxy,
} from '../support/proxy.js';

// The proxy-wide session cap (limits.maxSessions), counted across servers and across versions still
// draining after a reload. The tests share one proxy; each closes the sessions it opened, so the next
// starts from none.

const echo = fixtureCommand('echo');
const manifestOf = (version: string) => `limits: { maxSessions: 2 }
servers:
  a:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
    env: { VERSION: "${version}" }
  b:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
  lazy:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}
    startup: lazy
`;

const test = suite<{ proxy: RunningProxy }>('session cap', {} as { proxy: RunningProxy });
const clients: Client[] = [];
/** Ends each session the running test opened; run after it, whether it passed or failed. */
const ends: (() => Promise<unknown>)[] = [];

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifestOf('1'));
});

test.after.each(async () => {
  await Promise.all(ends.splice(0).map((end) => end().catch(() => {})));
});

test.after(async (ctx) => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await ctx.proxy?.stop();
});

const open = async (proxy: RunningProxy, name: string) => {
  const c = await connect(proxy.url, name);
  clients.push(c.client);
  ends.push(() => c.transport.terminateSession()); // nothing once the test ended it itself
  return c;
};

/** The status of a raw initialize on `name`; an opened session is left open until the test ends. */
async function initializeStatus(proxy: RunningProxy, name: string): Promise<Response> {
  const response = await postInitialize(`${proxy.url}/servers/${name}/mcp`);
  if (response.ok) {
    await response.body?.cancel();
    const headers = { 'mcp-session-id': response.headers.get('mcp-session-id')! };
    ends.push(() =>
      fetch(`${proxy.url}/servers/${name}/mcp`, {
        method: 'DELETE',
        headers,
        signal: AbortSignal.timeout(10_000),
      }),
    );
  }
  return response;
}

test('sessions on every server count: at the cap, an initialize answers 503 with Retry-After', async ({
  proxy,
}) => {
  await open(proxy, 'a');
  const onB = await open(proxy, 'b');
  const refused = await initializeStatus(proxy, 'a');
  assert.is(refused.status, 503);
  assert.is(refused.headers.get('retry-after'), '5');
  const body = (await refused.json()) as { error: { message: string } };
  assert.match(body.error.message, 'the proxy has reached its limit of 2 sessions');

  await onB.transport.terminateSession();
  assert.is((await initializeStatus(proxy, 'b')).status, 200, 'a closed session frees its place');
});

test('initializes arriving together are counted while they are answered: no more than the cap get in', async ({
  proxy,
}) => {
  // On a lazy server the first initialize waits for the child to start: all six are in flight at once.
  const statuses = await Promise.all(Array.from({ length: 6 }, () => initializeStatus(proxy, 'lazy')));
  assert.equal(
    statuses.map((r) => r.status).sort(),
    [200, 200, 503, 503, 503, 503],
    'two sessions, the cap, and four refusals',
  );
});

test('an initialize whose client leaves while its JWT is checked keeps no place under the cap', async () => {
  // A proxy of its own, with a cap of one and a JWKS the test holds back.
  const keys = await heldKeys();
  const capped = await startProxy(
    `limits: { maxSessions: 1 }\n${heldAuth(keys)}${manifestOf('1').replace('limits: { maxSessions: 2 }\n', '')}`,
    {
      env: { OPS_KEY },
    },
  );
  try {
    const leaving = new AbortController();
    const gone = postInitialize(
      `${capped.url}/servers/a/mcp`,
      { authorization: `Bearer ${await keys.token('mcp')}` },
      { signal: leaving.signal },
    );
    gone.catch(() => {}); // aborted on purpose
    await within(keys.asked, 'the proxy to fetch the keys');
    leaving.abort();
    keys.release();
    // The place it took while checked is given back: the next initialize gets in (a 503 may come first,
    // while the proxy has not yet seen the client go).
    await waitFor(
      async () => {
        const r = await postInitialize(`${capped.url}/servers/a/mcp`, { 'x-api-key': OPS_KEY });
        await r.body?.cancel();
        return r.status === 200;
      },
      10_000,
      'an initialize to get in under the cap',
    );
  } finally {
    await capped.stop();
    await keys.close();
  }
});

test('sessions held by a version draining after a reload still count', async ({ proxy }) => {
  const onA = await open(proxy, 'a');
  await open(proxy, 'b'); // with onA, the cap is reached
  writeFileSync(proxy.manifestPath, manifestOf('2')); // a restarts; its old version drains with onA's session
  const pidsOfA = async () =>
    (
      (await (await fetch(`${proxy.url}/servers`, { signal: AbortSignal.timeout(10_000) })).json()) as {
        servers: { name: string; pids: number[] }[];
      }
    ).servers.find((s) => s.name === 'a')!.pids;
  await waitFor(async () => (await pidsOfA()).length === 2, 10_000, "a's new version beside the old");

  assert.is((await initializeStatus(proxy, 'b')).status, 503);
  await onA.transport.terminateSession();
  assert.is((await initializeStatus(proxy, 'b')).status, 200);
});

test.run();
