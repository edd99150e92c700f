import { readFileSync } from 'node:fs';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { importConfigs, type ImportResult } from '../../src/import/import-configs.js';
import { parseJsonc } from '../../src/import/jsonc.js';
import { toServerName, uniqueName } from '../../src/import/names.js';
import { renderManifest, type ManifestFormat } from '../../src/import/render.js';
import { literalSecrets, secretArguments, urlHoldsSecret } from '../../src/import/secrets.js';
import { rewritePlaceholders, toVariableName, type PlaceholderUse } from '../../src/import/variables.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest, RemoteServerSpec, StdioServerSpec } from '../../src/manifest/types.js';
import { fromRoot } from '../support/paths.js';
import { FIXTURE_ENV as ENV } from '../fixtures/import/env.js';

const fixture = (path: string) => readFileSync(fromRoot('test', 'fixtures', 'import', path), 'utf8');
const seed = (name: string) =>
  JSON.parse(readFileSync(fromRoot('test', 'fixtures', 'adapters', `${name}.json`), 'utf8'));
const SEED_NAMES = ['azure-remote', 'foundry-remote', 'ado-remote', 'internal-mcp'];

const importFiles = (...files: string[]) =>
  importConfigs(files.map((file) => ({ file, text: fixture(file) })));
const importText = (text: string, file = 'config.json') => importConfigs([{ file, text }]);

/** import → text → the project's own loader: what `serve` would run. */
function roundTrip(result: ImportResult, format: ManifestFormat = 'yaml'): Manifest {
  assert.equal(result.errors, []);
  const loaded = loadManifest({
    file: 'mcp-proxy.yaml',
    bytes: renderManifest(result.manifest, format, ['config.json']),
    env: ENV,
    baseDir: '/srv',
  });
  assert.equal(
    loaded.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return loaded.manifest!;
}

const server = <T extends StdioServerSpec | RemoteServerSpec>(manifest: Manifest, name: string) =>
  manifest.servers.find((s) => s.name === name) as T;
const hasNote = (result: ImportResult, ...parts: string[]) =>
  assert.ok(
    result.notes.some((n) => parts.every((p) => n.includes(p))),
    `no note with ${parts.join(' … ')} in:\n${result.notes.join('\n')}`,
  );

test('a Claude Desktop configuration is recognised and its servers load as stdio and remote servers', () => {
  const result = importFiles('claude_desktop_config.json');
  hasNote(result, 'claude_desktop_config.json: read as a Claude Desktop configuration (mcpServers)');
  const manifest = roundTrip(result);
  assert.equal(
    manifest.servers.map((s) => [s.name, s.kind]),
    [
      ['filesystem', 'stdio'],
      ['github', 'stdio'],
      ['brave-search', 'stdio'],
      ['sqlite', 'stdio'],
      ['sentry', 'remote'],
      ['atlassian', 'remote'],
    ],
  );
  const filesystem = server<StdioServerSpec>(manifest, 'filesystem');
  assert.is(filesystem.command, 'npx');
  assert.equal(filesystem.args, [
    '-y',
    '@modelcontextprotocol/server-filesystem',
    '/Users/alex/Desktop',
    '/Users/alex/Downloads',
  ]);
  assert.equal(server<StdioServerSpec>(manifest, 'brave-search').env, { BRAVE_API_KEY: 'brave' });
  assert.is(server<RemoteServerSpec>(manifest, 'sentry').url, 'https://mcp.sentry.dev/mcp');
});

test('a literal secret is carried but flagged; a ${VAR} reference is not', () => {
  const result = importFiles('claude_desktop_config.json');
  assert.equal(result.manifest.servers.github!.env, {
    GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
  });
  hasNote(
    result,
    'servers.github: env.GITHUB_PERSONAL_ACCESS_TOKEN',
    'looks like a secret',
    '"${GITHUB_PERSONAL_ACCESS_TOKEN}"',
  );
  assert.not.ok(result.notes.some((n) => n.includes('BRAVE_API_KEY holds')));
  // The value is carried, and never repeated in a note.
  assert.not.ok(result.notes.some((n) => n.includes('ghp_16C7')));
});

test('an old HTTP+SSE server is imported disabled, with a note saying why and how to enable it', () => {
  const result = importFiles('claude_desktop_config.json');
  assert.equal(result.manifest.servers.atlassian, {
    url: 'https://mcp.atlassian.com/v1/sse',
    disabled: true,
  });
  hasNote(result, 'servers.atlassian: imported disabled', 'Streamable HTTP only', 'remove `disabled`');
  assert.is(server(roundTrip(result), 'atlassian').disabled, true);
});

test('a VS Code mcp.json (with comments) is recognised; ${input:…} and ${env:…} become ${VAR}', () => {
  const result = importFiles('vscode/mcp.json');
  hasNote(result, 'vscode/mcp.json: read as a VS Code MCP configuration (servers)');
  const manifest = roundTrip(result);
  assert.equal(server<StdioServerSpec>(manifest, 'perplexity').env, { PERPLEXITY_API_KEY: 'pplx' });
  assert.equal(server<RemoteServerSpec>(manifest, 'github').headers, { Authorization: 'Bearer ghp' });
  assert.equal(server<StdioServerSpec>(manifest, 'postgres').args, [
    '-y',
    '@modelcontextprotocol/server-postgres',
    'postgres://db/app',
  ]);
  assert.equal(result.manifest.servers.perplexity!.env, { PERPLEXITY_API_KEY: '${PERPLEXITY_KEY}' });
  assert.equal(result.manifest.servers.postgres!.args, [
    '-y',
    '@modelcontextprotocol/server-postgres',
    '${DATABASE_URL}',
  ]);
});

test('each VS Code prompt gets one note naming the variable to set, with its description', () => {
  const result = importFiles('vscode/mcp.json');
  hasNote(result, '${input:perplexity-key} (Perplexity API Key)', 'set PERPLEXITY_KEY', 'password');
  hasNote(result, '${input:github_pat} (GitHub Personal Access Token)', 'set GITHUB_PAT');
  assert.is(result.notes.filter((n) => n.includes('${input:perplexity-key}')).length, 1);
  hasNote(result, 'to set where it runs: DATABASE_URL, GITHUB_PAT, PERPLEXITY_KEY, WORKSPACE_FOLDER');
});

test('editor variables, envFile and sse are noted; what cannot be carried is not', () => {
  const result = importFiles('vscode/mcp.json');
  assert.equal(result.manifest.servers.playwright!.args, [
    '@playwright/mcp@latest',
    '--output-dir',
    '${WORKSPACE_FOLDER}/.playwright',
  ]);
  hasNote(result, '${workspaceFolder} is the editor', '${WORKSPACE_FOLDER}');
  assert.not.ok('envFile' in result.manifest.servers.postgres!);
  hasNote(result, 'servers.postgres: envFile "${workspaceFolder}/.env" is not carried');
  assert.equal(result.manifest.servers['local-sse'], { url: 'http://localhost:3001/sse', disabled: true });
});

test('a single gateway adapter payload is kept under adapters: unchanged', () => {
  const result = importFiles('adapter-payload.json');
  hasNote(result, 'read as an Azure mcp-gateway adapter payload');
  assert.equal(result.manifest, { servers: {}, adapters: [seed('azure-remote')] });
  const azure = server<StdioServerSpec>(roundTrip(result), 'azure-remote');
  assert.is(azure.origin, 'adapters');
  assert.equal(azure.args, ['-y', '@azure/mcp@latest', 'server', 'start']);
});

test('a list of the four seed payloads is kept as it is, in order, and loads as the seeds do', () => {
  const result = importFiles('adapter-payloads.json');
  hasNote(result, 'read as a list of Azure mcp-gateway adapter payloads');
  assert.equal(result.manifest.adapters, SEED_NAMES.map(seed));
  const manifest = roundTrip(result, 'json');
  assert.equal(
    manifest.servers.map((s) => [s.name, s.kind, s.useWorkloadIdentity]),
    [
      ['azure-remote', 'stdio', false],
      ['foundry-remote', 'stdio', true],
      ['ado-remote', 'stdio', true],
      ['internal-mcp', 'remote', false],
    ],
  );
  // A credential *type* named ..._TOKEN_CREDENTIALS is not a secret.
  assert.not.ok(result.notes.some((n) => n.includes('looks like a secret')));
});

test('fields the gateway adds when it lists adapters are dropped, with a note', () => {
  const listed = {
    ...seed('internal-mcp'),
    id: 'internal-mcp',
    createdBy: 'alex',
    createdAt: '2025-06-01T00:00:00Z',
  };
  const result = importText(JSON.stringify([listed]));
  assert.equal(result.manifest.adapters, [seed('internal-mcp')]);
  hasNote(result, 'adapters[0] (internal-mcp): ignored "id", "createdBy", "createdAt"');
});

test('an adapter the loader would refuse is skipped with the loader reason', () => {
  const remoteWithIdentity = { ...seed('internal-mcp'), useWorkloadIdentity: true };
  const unbalanced = { name: 'quoted', environmentVariables: { MCP_COMMAND: 'npx', MCP_ARGS: '"-y' } };
  const result = importText(JSON.stringify([remoteWithIdentity, unbalanced, seed('ado-remote')]));
  assert.equal(
    result.manifest.adapters.map((a) => a.name),
    ['ado-remote'],
  );
  hasNote(result, 'adapter "internal-mcp" skipped', 'names no token scope');
  hasNote(result, 'adapter "quoted" skipped: environmentVariables.MCP_ARGS: cannot be split into arguments');
});

test('names become lowercase DNS labels, each rename noted', () => {
  assert.is(toServerName('github'), 'github');
  assert.is(toServerName('Brave Search'), 'brave-search');
  assert.is(toServerName('UPPER_case.Server'), 'upper-case-server');
  assert.is(toServerName('  --My Server (prod)-- '), 'my-server-prod');
  assert.is(toServerName('Café Crème'), 'cafe-creme');
  assert.is(toServerName('数据'), 'server');
  assert.is(toServerName('a'.repeat(70)), 'a'.repeat(63));
  assert.is(toServerName(`${'a'.repeat(62)}_b`), 'a'.repeat(62)); // no dash left at the end
  const result = importText('{"mcpServers": {"My Server": {"command": "node"}}}');
  assert.equal(Object.keys(result.manifest.servers), ['my-server']);
  hasNote(result, 'server "My Server" is servers.my-server: names are lowercase DNS labels');
});

test('an adapter payload with an invalid name is renamed inside the payload', () => {
  const result = importText(JSON.stringify({ ...seed('ado-remote'), name: 'ADO_Remote' }));
  assert.is(result.manifest.adapters[0]!.name, 'ado-remote');
  hasNote(result, 'adapter "ADO_Remote" is adapters[0] (ado-remote)');
});

test('a taken name gets the next free suffix, still a valid name', () => {
  assert.is(uniqueName('github', new Set()), 'github');
  assert.is(uniqueName('github', new Set(['github'])), 'github-2');
  assert.is(uniqueName('github', new Set(['github', 'github-2'])), 'github-3');
  const long = 'a'.repeat(63);
  assert.is(uniqueName(long, new Set([long])), `${'a'.repeat(61)}-2`);
});

test('several files merge into one manifest; a duplicate name gets a suffix with a note', () => {
  const result = importFiles('claude_desktop_config.json', 'vscode/mcp.json', 'adapter-payloads.json');
  assert.equal(result.errors, []);
  const manifest = roundTrip(result);
  assert.is(manifest.servers.length, 6 + 6 + 4);
  hasNote(result, 'imported 12 servers and 4 adapters');
  assert.is(server<StdioServerSpec>(manifest, 'github').command, 'npx');
  assert.is(server<RemoteServerSpec>(manifest, 'github-2').url, 'https://api.githubcopilot.com/mcp/');
  hasNote(
    result,
    'vscode/mcp.json: server "github" is servers.github-2: "github" is already servers.github from claude_desktop_config.json',
  );
});

test('the same entry in two files is imported once; a server and an adapter never share a name', () => {
  const same = importFiles('adapter-payload.json', 'adapter-payloads.json');
  assert.equal(
    same.manifest.adapters.map((a) => a.name),
    SEED_NAMES,
  );
  hasNote(
    same,
    'adapter-payloads.json: adapter "azure-remote" is the same as adapters[0] (azure-remote) from adapter-payload.json: imported once',
  );

  const clash = importConfigs([
    { file: 'claude.json', text: '{"mcpServers": {"ado-remote": {"command": "node"}}}' },
    { file: 'ado.json', text: fixture('../adapters/ado-remote.json') },
  ]);
  assert.is(clash.manifest.adapters[0]!.name, 'ado-remote-2');
  roundTrip(clash);
});

test('the format is read from the content, not the file name', () => {
  const vscodeText = fixture('vscode/mcp.json');
  const result = importText(vscodeText, 'claude_desktop_config.json');
  hasNote(result, 'read as a VS Code MCP configuration');
});

test('a file that is not a configuration, or not JSON, is an error naming the file and the place', () => {
  assert.match(importText('{"foo": 1}', 'x.json').errors[0]!, 'x.json: not a configuration import reads');
  assert.match(
    importText('servers:\n  a: {}\n', 'm.yaml').errors[0]!,
    `m.yaml: not JSON: Unexpected token 's'`,
  );
  assert.match(
    importText('{\n  "mcpServers": {\n    "a" {}\n  }\n}').errors[0]!,
    'not JSON at line 3, column 9',
  );
});

test('client entries that cannot be servers are skipped with the reason; the rest is imported', () => {
  const result = importText(
    JSON.stringify({
      mcpServers: {
        'bad-args': { command: 'node', args: 'server.js --port 3000' },
        ws: { type: 'ws', url: 'ws://localhost:1/x' },
        nothing: { autoApprove: [] },
        typed: { type: 'http', command: 'node' },
        ok: { command: 'node', args: ['server.js'], disabled: true, autoApprove: ['read'], timeout: 60 },
      },
    }),
  );
  assert.equal(result.manifest.servers, { ok: { command: 'node', args: ['server.js'], disabled: true } });
  hasNote(result, 'server "bad-args" skipped: args: must be array');
  hasNote(result, 'server "ws" skipped: transport "ws" is not supported');
  hasNote(result, 'server "nothing" skipped: has neither command nor url');
  hasNote(result, 'server "typed" skipped: type "http" but no url');
  hasNote(result, 'servers.ok: ignored "autoApprove", "timeout": the manifest has no equivalent');
});

test('Claude Code remote entries and ${VAR:-default} are carried as they are', () => {
  const result = importText(
    JSON.stringify({
      mcpServers: {
        api: {
          type: 'http',
          url: '${API_BASE_URL:-https://api.example.com}/mcp',
          headers: { Authorization: 'Bearer ${API_KEY}' },
        },
      },
    }),
  );
  assert.equal(result.manifest.servers.api, {
    url: '${API_BASE_URL:-https://api.example.com}/mcp',
    headers: { Authorization: 'Bearer ${API_KEY}' },
  });
  hasNote(result, 'to set where it runs: API_KEY');
  const loaded = loadManifest({
    file: 'm.yaml',
    bytes: renderManifest(result.manifest, 'yaml', []),
    env: { API_KEY: 'k' },
    baseDir: '/',
  });
  assert.is((loaded.manifest!.servers[0] as RemoteServerSpec).url, 'https://api.example.com/mcp');
});

test('placeholders are rewritten into the manifest syntax', () => {
  const rewrite = (text: string) => {
    const uses: PlaceholderUse[] = [];
    return { text: rewritePlaceholders(text, uses), uses: uses.map((u) => `${u.kind}:${u.variable}`) };
  };
  assert.equal(rewrite('${env:GITHUB_TOKEN}'), { text: '${GITHUB_TOKEN}', uses: ['env:GITHUB_TOKEN'] });
  assert.equal(rewrite('Bearer ${input:apiToken}'), {
    text: 'Bearer ${API_TOKEN}',
    uses: ['input:API_TOKEN'],
  });
  assert.equal(rewrite('${userHome}/.config'), { text: '${HOME}/.config', uses: ['client:HOME'] });
  assert.equal(rewrite('${config:mcp.root}'), {
    text: '${CONFIG_MCP_ROOT}',
    uses: ['client:CONFIG_MCP_ROOT'],
  });
  assert.equal(rewrite('${VAR} ${VAR:-x} $PLAIN'), { text: '${VAR} ${VAR:-x} $PLAIN', uses: [] });
  assert.equal(rewrite('a${b'), { text: 'a$${b', uses: [] });
  assert.is(toVariableName('perplexity-key'), 'PERPLEXITY_KEY');
  assert.is(toVariableName('1password'), '_1PASSWORD');
});

test('secrets are told by the last word of the name, and only literal values', () => {
  const flagged = (map: Record<string, unknown>, prefix?: string) =>
    literalSecrets(map, prefix).map((s) => `${s.key}=${s.suggestion}`);
  assert.equal(
    flagged({
      GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_x',
      OPENAI_API_KEY: 'sk-x',
      DB_PASSWORD: 'hunter2',
      clientSecret: 's',
      AZURE_TOKEN_CREDENTIALS: 'WorkloadIdentityCredential',
      KEY_VAULT_NAME: 'kv',
      MAX_TOKENS: '4096',
      AZURE_FEDERATED_TOKEN_FILE: '/var/run/token',
      API_KEY: '${API_KEY}',
      USE_TOKEN: 'true',
      EMPTY_TOKEN: '',
    }),
    [
      'GITHUB_PERSONAL_ACCESS_TOKEN=${GITHUB_PERSONAL_ACCESS_TOKEN}',
      'OPENAI_API_KEY=${OPENAI_API_KEY}',
      'DB_PASSWORD=${DB_PASSWORD}',
      'clientSecret=${CLIENT_SECRET}',
    ],
  );
  assert.equal(flagged({ 'X-Api-Key': 'abc', Authorization: 'Bearer abc', Accept: 'x' }, 'search'), [
    'X-Api-Key=${SEARCH_X_API_KEY}',
    'Authorization=Bearer ${SEARCH_AUTHORIZATION}',
  ]);
});

test('secrets in arguments (after a flag named so) and in URLs (user, password, a query parameter) are found', () => {
  assert.equal(
    secretArguments([
      '-y',
      'server',
      '--api-key',
      'sk-live-1',
      '--token=abc',
      '--max-tokens',
      '4096',
      '--api-key',
      '${KEY}',
    ]),
    [3, 4],
  );
  assert.equal(secretArguments(['--password', '--verbose', '--name', 'x']), [], 'a flag is not a value');
  assert.ok(urlHoldsSecret('https://user:p4ss@host/mcp'));
  assert.ok(urlHoldsSecret('https://host/mcp?apikey=sk-url-secret'));
  assert.ok(urlHoldsSecret('https://host/mcp?access_token=x'));
  assert.not.ok(urlHoldsSecret('https://host/mcp?region=eu'));
  assert.not.ok(urlHoldsSecret('https://${USER}:${PASS}@host/mcp'), 'already variables');
});

test('JSONC: comments and trailing commas are accepted, and never read inside strings', () => {
  const text = `{
    // a comment
    "a": "http://x/*not a comment*/", /* block */
    "b": [1, 2, /* last */ ],
    "c": "//",
  }`;
  assert.equal(parseJsonc(text), { value: { a: 'http://x/*not a comment*/', b: [1, 2], c: '//' } });
  assert.equal(parseJsonc('\uFEFF{"a": "\\"," }'), { value: { a: '",' } });
});

test('YAML output starts with the schema comment and reads back as the same manifest', () => {
  const result = importFiles('claude_desktop_config.json', 'adapter-payloads.json');
  const yaml = renderManifest(result.manifest, 'yaml', ['claude_desktop_config.json']);
  assert.ok(yaml.startsWith('# yaml-language-server: $schema=./schema/mcp-proxy.schema.json\n'));
  assert.equal(parse(yaml), result.manifest);
  const json = JSON.parse(renderManifest(result.manifest, 'json', []));
  assert.is(json.$schema, './schema/mcp-proxy.schema.json');
  assert.equal({ servers: json.servers, adapters: json.adapters }, result.manifest);
});

test('an empty section is left out of the output', () => {
  const result = importFiles('adapter-payload.json');
  assert.not.ok(parse(renderManifest(result.manifest, 'yaml', [])).servers);
});

test.run();
