import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { fromRoot } from '../support/paths.js';
import { test } from '../support/uvu.js';

// uvu 0.5.6 loses what a before or after hook throws, and exits 0 (test/support/uvu.ts).

/** Runs one fixture suite of test/fixtures/suites in a uvu of its own. */
const runSuite = (file: string) =>
  spawnSync(
    process.execPath,
    [fromRoot('node_modules/uvu/bin.js'), fromRoot('dist/test/fixtures/suites'), `${file}\\.js$`],
    { encoding: 'utf8', timeout: 20_000 },
  );

test('a suite whose before hook throws prints the error and fails the run', () => {
  const run = runSuite('failing-hook');
  assert.is(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stderr, 'before hook of suite "failing setup" failed: Error: the setup broke');
});

test('a suite whose before.each hook throws prints the error and fails the run', () => {
  const run = runSuite('failing-before-each');
  assert.is(run.status, 1, run.stdout + run.stderr);
  assert.match(
    run.stderr,
    'before.each hook of suite "failing before.each" failed: Error: the per-test setup broke',
  );
});

test('a suite whose after.each hook throws after a failing test prints the error and fails the run', () => {
  const run = runSuite('failing-after-each');
  assert.is(run.status, 1, run.stdout + run.stderr);
  assert.match(
    run.stderr,
    'after.each hook of suite "failing after.each" failed: Error: the per-test cleanup broke',
  );
});

test('every test file takes suite and test from test/support/uvu.js, not from uvu', () => {
  const direct = ['unit', 'e2e'].flatMap((dir) =>
    readdirSync(fromRoot('test', dir))
      .filter((name) => name.endsWith('.test.ts'))
      .filter((name) => /\bfrom\s+['"]uvu['"]/.test(readFileSync(fromRoot('test', dir, name), 'utf8')))
      .map((name) => `test/${dir}/${name}`),
  );
  assert.equal(direct, []);
});

test.run();
