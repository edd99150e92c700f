import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as assert from 'uvu/assert';
import { isAlive, stopProcess, waitFor, within } from '../support/proxy.js';
import { test } from '../support/uvu.js';

// stopProcess (test/support/proxy.ts) on a process that ignores SIGTERM, as a stuck proxy does: its
// SIGKILL must not leave behind the children it ran in process groups of their own.

const stubborn = `
process.on('SIGTERM', () => {});
const child = require('node:child_process').spawn(
  process.execPath,
  ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'],
  { detached: true, stdio: 'ignore' },
);
process.stdout.write(child.pid + '\\n'); // not console.log: under uvu it colours a number
setInterval(() => {}, 1000);
`;

test('a process that ignores SIGTERM is killed, and so is the process group of each child it had', async () => {
  const parent = spawn(process.execPath, ['-e', stubborn], { stdio: ['ignore', 'pipe', 'inherit'] });
  let grandchild: number | undefined;
  try {
    const [line] = (await within(once(parent.stdout!, 'data'), 'the child pid')) as [Buffer];
    grandchild = Number(String(line).trim());
    assert.ok(isAlive(grandchild), 'the detached child runs');
    assert.is(await stopProcess(parent), null, 'killed, not exited');
    await waitFor(() => !isAlive(grandchild!), 5000, `the detached child ${grandchild} to be killed`);
  } finally {
    parent.kill('SIGKILL');
    if (grandchild !== undefined && isAlive(grandchild)) process.kill(-grandchild, 'SIGKILL');
  }
});

test.run();
