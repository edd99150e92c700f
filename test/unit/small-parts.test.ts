import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { LONGEST_DURATION_MS, parseDuration } from '../../src/manifest/duration.js';
import { suggest } from '../../src/manifest/suggest.js';
import { formatGithubAnnotation, formatPath } from '../../src/manifest/diagnostics.js';
import { isLoopback } from '../../src/host-address.js';

test('durations in ms, s, m, h and bare milliseconds', () => {
  assert.is(parseDuration('250ms'), 250);
  assert.is(parseDuration('30s'), 30_000);
  assert.is(parseDuration('5m'), 300_000);
  assert.is(parseDuration('1h'), 3_600_000);
  assert.is(parseDuration('1500'), 1500);
  assert.is(parseDuration(42), 42);
  assert.throws(() => parseDuration('5 minutes'));
});

test('a duration longer than a Node timer can wait counts as the longest it can', () => {
  // Node fires a timer set past 2^31 - 1 ms after 1 ms: `timeout: 600h` would time every request out.
  assert.is(parseDuration('600h'), LONGEST_DURATION_MS);
  assert.is(parseDuration(2 ** 40), LONGEST_DURATION_MS);
  assert.is(parseDuration(String(LONGEST_DURATION_MS)), 2 ** 31 - 1);
});

test('suggest finds typos and case slips, and nothing for unrelated words', () => {
  assert.is(suggest('comand', ['command', 'args', 'url']), 'command');
  assert.is(suggest('URL', ['command', 'url']), 'url');
  assert.is(suggest('useWorkloadIdentiy', ['useWorkloadIdentity', 'scope']), 'useWorkloadIdentity');
  assert.is(suggest('banana', ['command', 'url']), undefined);
});

test('paths read as people write them', () => {
  assert.is(formatPath(['servers', 'azure', 'args', 0]), 'servers.azure.args[0]');
  assert.is(
    formatPath(['adapters', 2, 'environmentVariables', 'MCP_ARGS']),
    'adapters[2].environmentVariables.MCP_ARGS',
  );
  assert.is(formatPath(['servers', 'a', 'headers', 'X Key']), 'servers.a.headers["X Key"]');
});

test('GitHub annotations escape what the workflow command syntax reserves', () => {
  const line = formatGithubAnnotation({
    severity: 'error',
    file: 'a,b:c.yaml',
    line: 3,
    column: 5,
    path: 'servers.x',
    message: '100% wrong\nreally',
  });
  assert.is(line, '::error file=a%2Cb%3Ac.yaml,line=3,col=5::servers.x: 100%25 wrong%0Areally');
});

test('loopback is localhost, 127.0.0.0/8 and ::1; never a name that starts with 127.', () => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]'])
    assert.ok(isLoopback(host), host);
  for (const host of ['127.example.com', '0.0.0.0', '10.0.0.1', '::', 'example.com', '128.0.0.1']) {
    assert.not.ok(isLoopback(host), host);
  }
});

test.run();
