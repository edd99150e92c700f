import { readdirSync, readFileSync } from 'node:fs';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { loadManifest } from '../../src/manifest/load.js';
import { fromRoot } from '../support/paths.js';

// Each invalid manifest under test/fixtures/invalid/ is pinned to the exact messages and positions
// it must produce: a change of wording or position is a change users see, so it shows up here.
const dir = fromRoot('test', 'fixtures', 'invalid');
const expected: Record<string, string[]> = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8'));
const files = readdirSync(dir)
  .filter((f) => f !== 'expected.json')
  .sort();

test('the corpus holds at least 30 invalid manifests, each with its expectation', () => {
  assert.ok(files.length >= 30, `only ${files.length} fixtures`);
  assert.equal(Object.keys(expected).sort(), files);
});

for (const file of files) {
  test(`${file} is refused with its expected messages and positions`, () => {
    const result = loadManifest({
      file,
      bytes: readFileSync(`${dir}/${file}`),
      env: { HOME: '/home/someone' }, // MCP_TEST_UNSET_SECRET and friends are unset on purpose
      baseDir: dir,
    });
    assert.is(result.manifest, undefined, 'an invalid manifest must not produce servers');
    const lines = result.diagnostics.map(
      (d) =>
        `${d.line}:${d.column} ${d.severity === 'warning' ? 'warning: ' : ''}${d.path ? `${d.path}: ` : ''}${d.message}`,
    );
    assert.equal(lines, expected[file]);
  });
}

test.run();
