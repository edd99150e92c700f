import { rmSync, writeFileSync } from 'node:fs';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { connect, fixtureCommand, serversOf, startProxy, waitFor } from '../support/proxy.js';

// A manifest that cannot be read while the proxy runs (deleted here: tests may run as root, whom chmod 000
// does not stop from reading) is a failed reload that changes nothing; a file put back applies again.

const echo = fixtureCommand('echo');
const server = (name: string) => `
  ${name}:
    command: ${JSON.stringify(echo.command)}
    args: ${JSON.stringify(echo.args)}`;

const test = suite('reload of an unreadable manifest');

test('a deleted manifest is a failed reload while the servers keep answering; restoring it applies', async () => {
  const proxy = await startProxy(`servers:${server('kept')}\n`);
  const { client } = await connect(proxy.url, 'kept');
  const status = () => serversOf(proxy.url);
  try {
    rmSync(proxy.manifestPath);
    // SIGHUP as well as the watcher: either reads the file, and a reload that fails leaves nothing to race.
    proxy.process.kill('SIGHUP');
    await waitFor(async () => (await status()).reload?.result === 'failed', 10_000, 'the failed reload');
    const failed = await status();
    assert.equal(failed.reload!.errors, [`${proxy.manifestPath}: no such file`]);
    assert.equal(
      failed.servers.map((s) => [s.name, s.state]),
      [['kept', 'ready']],
    );
    const answer = await client.callTool({ name: 'echo', arguments: { text: 'still served' } });
    assert.equal(answer.content, [{ type: 'text', text: 'still served' }]);

    writeFileSync(proxy.manifestPath, `servers:${server('kept')}${server('added')}\n`);
    proxy.process.kill('SIGHUP');
    await waitFor(
      async () => (await status()).reload?.result === 'applied',
      10_000,
      'the restored file to apply',
    );
    assert.equal((await status()).servers.map((s) => s.name).sort(), ['added', 'kept']);
    const again = await client.callTool({ name: 'echo', arguments: { text: 'after' } });
    assert.equal(again.content, [{ type: 'text', text: 'after' }]);
  } finally {
    await client.close();
    await proxy.stop();
  }
});

test.run();
