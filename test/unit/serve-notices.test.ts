import * as assert from 'uvu/assert';
import { openAccess, overriddenListen } from '../../src/commands/serve.js';
import { test } from '../support/uvu.js';

test('no warning on loopback, or with auth', () => {
  for (const host of ['127.0.0.1', '::1', 'localhost'])
    assert.is(openAccess(host, false, false), undefined, host);
  assert.is(openAccess('0.0.0.0', true, false), undefined);
});

test('beyond loopback without auth: a manifest is told to declare auth:', () => {
  const open = openAccess('0.0.0.0', false, false)!;
  assert.match(open.warning, 'no access control (auth:) and listening on 0.0.0.0');
  assert.match(open.remedy, 'Declare auth: in the manifest');
});

test('single-server mode, which has no manifest, is told what it can do instead', () => {
  const open = openAccess('0.0.0.0', false, true)!;
  assert.not.match(open.remedy, 'Declare auth: in the manifest');
  assert.match(
    open.remedy,
    'behind a gateway that authenticates, or serve a manifest with adapters: and auth:',
  );
});

test("a manifest's listen replaced by flags or HOST/PORT is named; one that holds, or none, is not", () => {
  assert.is(overriddenListen({}, { host: '0.0.0.0', port: 8000 }), undefined);
  assert.is(overriddenListen({ host: '0.0.0.0', port: 8000 }, { host: '0.0.0.0', port: 8000 }), undefined);
  assert.match(
    overriddenListen({ port: 9000 }, { host: '0.0.0.0', port: 8000 })!,
    "the manifest's listen port is replaced",
  );
  assert.match(
    overriddenListen({ host: '127.0.0.1', port: 9000 }, { host: '0.0.0.0', port: 8000 })!,
    "the manifest's listen host and port are replaced",
  );
});

test.run();
