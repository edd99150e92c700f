import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
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

test.run();
