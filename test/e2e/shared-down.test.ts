import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { listingOf, postInitialize, startProxy, waitFor, type RunningProxy } from '../support/proxy.js';

// A shared stdio server that is down (`failed`: it cannot be run, or gave up; `stopped`: it exited and its
// restart policy keeps it down) refuses a new session with 503 and Retry-After: 30, naming its state.

const list = (xs: string[]) => JSON.stringify(xs);
const manifest = `
servers:
  unrunnable:
    command: w6-no-such-command
  quits:
    command: ${JSON.stringify(process.execPath)}
    args: ${list(['-e', 'process.exit(0)'])}
    restart: never
`;

const test = suite<{ proxy: RunningProxy }>('shared stdio down', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

async function stateOf(proxy: RunningProxy, name: string): Promise<string> {
  return (await listingOf(proxy.url, name)).state;
}

for (const [name, state] of [
  ['unrunnable', 'failed'],
  ['quits', 'stopped'],
] as const) {
  test(`an initialize to a server ${state} is answered 503 with Retry-After: 30`, async ({ proxy }) => {
    await waitFor(async () => (await stateOf(proxy, name)) === state, 10_000, `${name} to be ${state}`);
    const response = await postInitialize(`${proxy.url}/servers/${name}/mcp`);
    assert.is(response.status, 503);
    assert.is(response.headers.get('retry-after'), '30');
    assert.is(response.headers.get('mcp-session-id'), null);
    const body = (await response.json()) as { error: { message: string } };
    assert.match(body.error.message, `server ${name} is ${state}`);
  });
}

test.run();
