import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { manifestSchema } from '../../src/manifest/schema.js';

type Schema = Record<string, unknown>;

/** Every subschema, with a path for messages. */
function* subschemas(schema: unknown, path = '#'): Generator<[string, Schema]> {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return;
  yield [path, schema as Schema];
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' || key === '$defs' || key === 'dependentSchemas') {
      for (const [name, sub] of Object.entries(value as Schema))
        yield* subschemas(sub, `${path}/${key}/${name}`);
    } else if (['items', 'additionalProperties', 'propertyNames'].includes(key)) {
      yield* subschemas(value, `${path}/${key}`);
    } else if (key === 'oneOf' && Array.isArray(value)) {
      for (const [i, sub] of value.entries()) yield* subschemas(sub, `${path}/oneOf/${i}`);
    }
  }
}

test('the schema is draft 2020-12 with an $id', () => {
  assert.is(manifestSchema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.type(manifestSchema.$id, 'string');
});

test('every declared property has a description (directly or through its $ref)', () => {
  const defs = manifestSchema.$defs as Record<string, Schema>;
  for (const [path, schema] of subschemas(manifestSchema)) {
    if (path.includes('/dependentSchemas/')) continue; // those only forbid keys declared elsewhere
    for (const [name, property] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
      const ref = typeof property.$ref === 'string' ? defs[property.$ref.replace('#/$defs/', '')] : undefined;
      assert.ok(property.description ?? ref?.description, `${path}/properties/${name} has no description`);
    }
  }
});

test('every object with declared properties refuses unknown keys', () => {
  for (const [path, schema] of subschemas(manifestSchema)) {
    if (!schema.properties || path.includes('/dependentSchemas/')) continue;
    const closed = schema.additionalProperties === false;
    // environmentVariables is the one open map with named keys: every other variable goes to the server.
    const openMap = path.endsWith('/environmentVariables') && typeof schema.additionalProperties === 'object';
    assert.ok(closed || openMap, `${path} accepts unknown keys`);
  }
});

test.run();
