import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { startProxy } from '../support/proxy.js';
import { runCli } from '../support/run-cli.js';

// What the CLI says when it is used in ways people try: each points at what was meant.

test('-h or -v before a command is that command help, or the version', async () => {
  const serve = await runCli(['-h', 'serve']);
  assert.is(serve.code, 0, serve.stderr);
  assert.match(serve.stdout, /^Usage: mcp-proxy serve /);
  const validate = await runCli(['--help', 'validate']);
  assert.is(validate.code, 0, validate.stderr);
  assert.match(validate.stdout, /^Usage: mcp-proxy validate /);
  const version = await runCli(['-v', 'schema']);
  assert.is(version.code, 0, version.stderr);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('serve FILE suggests -c FILE', async () => {
  const r = await runCli(['serve', 'mcp-proxy.yaml']);
  assert.is(r.code, 2);
  assert.match(
    r.stderr,
    /^mcp-proxy: unexpected argument "mcp-proxy.yaml"; did you mean -c mcp-proxy.yaml\?\n/,
  );
  assert.match(r.stderr, 'Usage: mcp-proxy serve');
});

test('help and version as commands suggest the flags; a misspelt command, the command', async () => {
  for (const [word, hint] of [
    ['help', '--help'],
    ['version', '--version'],
    ['valdate', '"validate"'],
  ]) {
    const r = await runCli([word!]);
    assert.is(r.code, 2);
    assert.match(r.stderr, `mcp-proxy: unknown command "${word}"; did you mean ${hint}?\n`);
  }
  const unknown = await runCli(['frobnicate']);
  assert.match(unknown.stderr, 'mcp-proxy: unknown command "frobnicate"\n');
});

test('listening on an IPv6 address prints a URL that works: the address in brackets', async () => {
  const proxy = await startProxy('servers: {}\n', { args: ['--host', '::1', '--port', '17501'] });
  try {
    assert.is(proxy.url, 'http://[::1]:17501');
    const r = await fetch(`${proxy.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.is(r.status, 200);
  } finally {
    await proxy.stop();
  }
});

test.run();
