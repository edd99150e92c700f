import { readFileSync } from 'node:fs';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { manifestReference } from '../../src/manifest/reference.js';
import { manifestSchema } from '../../src/manifest/schema.js';
import { fromRoot } from '../support/paths.js';

test('docs/manifest.md is what the schema generates (run `npm run docs` after editing the schema)', () => {
  const committed = readFileSync(fromRoot('docs', 'manifest.md'), 'utf8');
  assert.fixture(committed, manifestReference(manifestSchema));
});

test('every property of the schema appears in the reference', () => {
  const reference = manifestReference(manifestSchema);
  const defs = manifestSchema.$defs as Record<string, { properties?: Record<string, unknown> }>;
  const objects = [manifestSchema, defs.server!, defs.adapter!, defs.apiKey!, defs.jwt!] as {
    properties?: Record<string, unknown>;
  }[];
  for (const object of objects) {
    for (const name of Object.keys(object.properties ?? {})) assert.match(reference, `| \`${name}\``, name);
  }
});

test.run();
