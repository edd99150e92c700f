import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { hostDenial } from '../../src/gateway/host-check.js';

// The pure rule of the DNS rebinding check; the proxy applying it is tested in e2e/host-check.

const onLoopback = { listensOnLoopback: true, allowedHosts: [] };

test('on loopback, only names of this machine, addresses and listed names pass', () => {
  for (const host of ['localhost', 'localhost:8080', 'a.b.localhost:1', '127.0.0.1:80', '[::1]:80', '[::1]'])
    assert.is(hostDenial(host, onLoopback), undefined, host);
  for (const host of ['evil.example', 'evil.example:8080', 'localhost.evil.example', '127.0.0.1.nip.io:80'])
    assert.is(hostDenial(host, onLoopback)?.status, 403, host);
  assert.is(hostDenial('Evil.Example:1', { ...onLoopback, allowedHosts: ['evil.example'] }), undefined);
});

test('a fully qualified name (trailing dot) is the same name; a long one is judged whole', () => {
  for (const host of ['localhost.', 'app.localhost.:80'])
    assert.is(hostDenial(host, onLoopback), undefined, host);
  assert.is(hostDenial('mcp.example.com.', { ...onLoopback, allowedHosts: ['mcp.example.com'] }), undefined);
  assert.is(hostDenial('evil.example.', onLoopback)?.status, 403);
  // Its first 253 characters end in .localhost: only a cut name would pass.
  assert.is(hostDenial(`${'a'.repeat(243)}.localhost.evil.example`, onLoopback)?.status, 403);
});

test('elsewhere, the check is off until allowedHosts is given', () => {
  assert.is(hostDenial('any.example', { listensOnLoopback: false, allowedHosts: [] }), undefined);
  const listed = { listensOnLoopback: false, allowedHosts: ['mcp.example.com'] };
  assert.is(hostDenial('mcp.example.com', listed), undefined);
  assert.is(hostDenial('10.0.0.7:8080', listed), undefined, "a pod's address, as a probe sends it");
  assert.is(hostDenial('other.example.com', listed)?.status, 403);
});

test('a request without Host (HTTP/1.0) is no browser and passes', () => {
  assert.is(hostDenial(undefined, onLoopback), undefined);
});

test.run();
