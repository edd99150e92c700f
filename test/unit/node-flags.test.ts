import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { cliNodeFlags, cliPath, fromRoot } from '../support/paths.js';

// The proxy's node flags are written in three places: the CLI's first line (the installed `mcp-proxy`
// command), `npm start` and the image's ENTRYPOINT (checked in dockerfile.test.ts). They must not drift.

test('the CLI declares the young-generation cap of decision 0021', () => {
  assert.ok(cliNodeFlags().includes('--max-semi-space-size=4'), cliNodeFlags().join(' '));
});

test('the built CLI keeps the first line that declares them', () => {
  assert.is(
    readFileSync(cliPath, 'utf8').split('\n', 1)[0],
    `#!/usr/bin/env -S node ${cliNodeFlags().join(' ')}`,
  );
});

test('npm start runs the CLI with the same flags', () => {
  const { scripts } = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.match(scripts.start!, `node ${cliNodeFlags().join(' ')} dist/src/cli.js serve`);
});

test('the V8 of this node knows the marking triggers the server sets (decision 0031)', () => {
  // An unknown flag set at run time only prints an error: the suite, run on Node 20 and 24, is where it shows.
  const run = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `(await import(${JSON.stringify(fromRoot('dist', 'src', 'marking-triggers.js'))})).setMarkingTriggers()`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.is(run.status, 0, run.stderr);
  assert.is(run.stderr, '');
});

test.run();
