import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fixtureCommand, startProxy } from '../support/proxy.js';
import { runCli } from '../support/run-cli.js';

// Single-server env mode: the drop-in replacement for the gateway's per-adapter container.

const echo = fixtureCommand('echo');

async function call(url: string, tool: string, args: Record<string, unknown>) {
  const client = new Client({ name: 'e2e', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    const result = (await client.callTool({ name: tool, arguments: args })) as {
      content: { text: string }[];
    };
    return result.content[0]!.text;
  } finally {
    await client.close();
  }
}

test('MCP_COMMAND + MCP_ARGS serve one server at /mcp and /servers/default/mcp, with the whole environment', async () => {
  const proxy = await startProxy(undefined, {
    env: {
      MCP_COMMAND: echo.command,
      // Quoted as a shell would: the path is one word even if it had spaces.
      MCP_ARGS: `'${echo.args[0]}'`,
      ADO_MCP_AZURE_TOKEN_CREDENTIALS: 'WorkloadIdentityCredential',
    },
  });
  try {
    assert.is(await call(`${proxy.url}/mcp`, 'echo', { text: 'root' }), 'root');
    assert.is(await call(`${proxy.url}/servers/default/mcp`, 'echo', { text: 'named' }), 'named');
    const { env } = JSON.parse(await call(`${proxy.url}/mcp`, 'whoami', {}));
    assert.is(
      env.ADO_MCP_AZURE_TOKEN_CREDENTIALS,
      'WorkloadIdentityCredential',
      'other variables reach the child',
    );
    assert.is(env.MCP_COMMAND, undefined);
    assert.is(env.MCP_ARGS, undefined);
  } catch (error) {
    await proxy.stop();
    throw error;
  }
  // Checked only once the test's own checks passed: a failed stop must not hide why they failed.
  assert.is(await proxy.stop(), 0);
});

test('MCP_PROXY_URL forwards to a remote server', async () => {
  const upstream = await startProxy(undefined, {
    env: { MCP_COMMAND: echo.command, MCP_ARGS: echo.args[0]! },
  });
  try {
    const proxy = await startProxy(undefined, { env: { MCP_PROXY_URL: `${upstream.url}/mcp` } });
    try {
      assert.is(
        await call(`${proxy.url}/mcp`, 'echo', { text: 'through two proxies' }),
        'through two proxies',
      );
    } finally {
      await proxy.stop();
    }
  } finally {
    // Also when the second proxy failed to start.
    await upstream.stop();
  }
});

test('bad single-server variables are refused with a message naming the variable', async () => {
  const r = await runCli(['serve', '--port', '0'], {
    env: { MCP_COMMAND: 'npx', MCP_ARGS: "-y 'unterminated" },
  });
  assert.is(r.code, 1);
  assert.match(r.stderr, 'MCP_ARGS: cannot be split into arguments: unbalanced single quote');
  const url = await runCli(['serve', '--port', '0'], { env: { MCP_PROXY_URL: 'ftp://example.com/mcp' } });
  assert.is(url.code, 1);
  assert.match(url.stderr, 'MCP_PROXY_URL: must be an absolute http:// or https:// URL');
});

test('MCP_COMMAND, MCP_PROXY_URL or MCP_PROXY_CONFIG set empty count as unset: the manifest is served', async () => {
  // A container's `-e MCP_COMMAND=` or a Helm value left blank: as with HOST and PORT, empty means unset.
  // The manifest is invalid, so serve stops at it, naming it, instead of starting anything.
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-empty-env-'));
  try {
    writeFileSync(join(dir, 'mcp-proxy.yaml'), 'servers:\n  a: { command: node, agrs: [x] }\n');
    for (const name of ['MCP_COMMAND', 'MCP_PROXY_URL', 'MCP_PROXY_CONFIG']) {
      const env = { [name]: '' };
      const r = await runCli(['serve', '--port', '0'], { cwd: dir, env });
      assert.is(r.code, 1, JSON.stringify(env) + r.stderr);
      assert.match(r.stderr, 'mcp-proxy.yaml:2:23 servers.a.agrs: unknown key', JSON.stringify(env));
    }
    const validate = await runCli(['validate'], { cwd: dir, env: { MCP_PROXY_CONFIG: '' } });
    assert.is(validate.code, 1, validate.stdout + validate.stderr);
    assert.match(validate.stdout, 'mcp-proxy.yaml: invalid, 1 error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an empty MCP_PROXY_URL beside MCP_COMMAND is unset too', async () => {
  const r = await runCli(['serve', '--port', '0'], {
    env: { MCP_COMMAND: 'npx', MCP_PROXY_URL: '', MCP_ARGS: "-y 'unterminated" },
  });
  // Not "has both MCP_COMMAND and MCP_PROXY_URL": the one error is the real one.
  assert.is(r.code, 1);
  assert.is(
    r.stderr.trim(),
    'mcp-proxy: MCP_ARGS: cannot be split into arguments: unbalanced single quote at character 4',
  );
});

test.run();
