import { readFileSync } from 'node:fs';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { loadManifest } from '../../src/manifest/load.js';
import type { RemoteServerSpec } from '../../src/manifest/types.js';
import { fromRoot } from '../support/paths.js';

/**
 * The demo's remote entry calls the proxy back through itself, so its URL must name the port the proxy
 * listens on. `PORT` moves the proxy (it wins over `listen.port`); the URL must move with it.
 */
const remoteUrl = (env: Record<string, string>): string => {
  const dir = fromRoot('examples');
  const { manifest, diagnostics } = loadManifest({
    file: 'offline-demo.yaml',
    bytes: readFileSync(`${dir}/offline-demo.yaml`),
    env,
    baseDir: dir,
  });
  assert.ok(manifest, JSON.stringify(diagnostics));
  const remote = manifest.servers.find((s): s is RemoteServerSpec => s.name === 'everything-remote');
  assert.ok(remote, 'the demo has a remote entry');
  return remote.url;
};

test('the offline demo calls itself back on PORT when PORT moves it', () => {
  assert.is(remoteUrl({ PORT: '15080' }), 'http://127.0.0.1:15080/servers/everything/mcp');
});

test('the offline demo calls itself back on its listen port when PORT is unset or empty', () => {
  assert.is(remoteUrl({}), 'http://127.0.0.1:8000/servers/everything/mcp');
  // serve treats an empty PORT as unset, and so does ${PORT:-8000}
  assert.is(remoteUrl({ PORT: '' }), 'http://127.0.0.1:8000/servers/everything/mcp');
});

test.run();
