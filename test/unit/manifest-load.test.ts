import { readdirSync, readFileSync } from 'node:fs';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { loadManifest, type LoadResult } from '../../src/manifest/load.js';
import type { RemoteServerSpec, StdioServerSpec } from '../../src/manifest/types.js';
import { fromRoot } from '../support/paths.js';

const load = (text: string, env: Record<string, string> = {}): LoadResult =>
  loadManifest({ file: 'mcp-proxy.yaml', bytes: text, env, baseDir: '/etc/mcp-proxy' });

const valid = (text: string, env?: Record<string, string>) => {
  const result = load(text, env);
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  assert.equal(errors, [], 'expected a valid manifest');
  return result.manifest!;
};

const seedDir = fromRoot('test', 'fixtures', 'adapters');
const seed = (name: string) => readFileSync(`${seedDir}/${name}.json`, 'utf8');

test('the four gateway payloads load unchanged as adapters, in JSON form', () => {
  const names = ['azure-remote', 'foundry-remote', 'ado-remote', 'internal-mcp'];
  const manifest = valid(`{"adapters": [${names.map(seed).join(',')}]}`);
  assert.equal(
    manifest.servers.map((s) => [s.name, s.kind, s.origin]),
    names.map((n) => [n, n === 'internal-mcp' ? 'remote' : 'stdio', 'adapters']),
  );
});

test('an isolation: session server takes 32 sessions unless it or defaults name a maxSessions (0047)', () => {
  const manifest = valid(`
servers:
  each: { command: node, isolation: session }
  named: { command: node, isolation: session, maxSessions: 100 }
  shared: { command: node }
  remote: { url: "https://mcp.example.com/mcp" }
`);
  assert.equal(
    manifest.servers.map((s) => [s.name, s.maxSessions]),
    [
      ['each', 32],
      ['named', 100],
      ['shared', undefined],
      ['remote', undefined],
    ],
  );
  const fromDefaults = valid(`
defaults: { isolation: session, maxSessions: 5 }
servers:
  each: { command: node }
`);
  assert.is(fromDefaults.servers[0]!.maxSessions, 5);
});

test('an auth: with no value is an error, and no warning guesses that it meant no jwt', () => {
  const result = load('auth:\nservers:\n  a: { command: node, requiredRoles: [reader] }\n');
  assert.equal(
    result.diagnostics.map((d) => [d.severity, d.path]),
    [['error', 'auth']],
  );
});

test('limits.shutdownGrace is 10 s unless given', () => {
  assert.is(valid('servers: {}\n').limits.shutdownGraceMs, 10_000);
  assert.is(valid('limits: { shutdownGrace: 2s }\nservers: {}\n').limits.shutdownGraceMs, 2_000);
});

test('a gateway payload pasted into a YAML list loads too', () => {
  const indented = seed('ado-remote')
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  const manifest = valid(`adapters:\n  -\n${indented}\n`);
  assert.is(manifest.servers[0]!.name, 'ado-remote');
});

test('MCP_COMMAND and MCP_ARGS make the command; every other variable becomes the env', () => {
  const [azure] = valid(`{"adapters": [${seed('azure-remote')}]}`).servers as StdioServerSpec[];
  assert.is(azure!.command, 'npx');
  assert.equal(azure!.args, ['-y', '@azure/mcp@latest', 'server', 'start']);
  assert.equal(azure!.env, {
    AZURE_MCP_INCLUDE_PRODUCTION_CREDENTIALS: 'true',
    DOTNET_SYSTEM_GLOBALIZATION_INVARIANT: '1',
  });
  assert.is(azure!.useWorkloadIdentity, false);
  assert.is(azure!.description, 'Bridged Azure local MCP server');
});

test('workload identity and service-specific credential variables are carried as given', () => {
  const [ado] = valid(`{"adapters": [${seed('ado-remote')}]}`).servers as StdioServerSpec[];
  assert.is(ado!.useWorkloadIdentity, true);
  assert.equal(ado!.env, {
    ADO_MCP_AZURE_TOKEN_CREDENTIALS: 'WorkloadIdentityCredential',
    AZURE_TOKEN_CREDENTIALS: 'WorkloadIdentityCredential',
  });
  const [foundry] = valid(`{"adapters": [${seed('foundry-remote')}]}`).servers as StdioServerSpec[];
  assert.equal(foundry!.args, [
    '--prerelease=allow',
    '--from',
    'git+https://github.com/azure-ai-foundry/mcp-foundry.git',
    'run-azure-ai-foundry-mcp',
  ]);
});

test('MCP_PROXY_URL makes a remote server, single-label hosts included', () => {
  const [internal] = valid(`{"adapters": [${seed('internal-mcp')}]}`).servers as RemoteServerSpec[];
  assert.is(internal!.kind, 'remote');
  assert.is(internal!.url, 'https://internal-mcp-server/mcp');
});

test('a URL whose user or password is not valid percent-encoding is an error, in servers and adapters', () => {
  // The URL parser takes %FF; decoding it for Basic authorization throws, and did so in a running proxy.
  const result = load(`
servers:
  bad: { url: 'https://user:%FF@host/mcp' }
  fine: { url: 'https://user:p%40ss@host/mcp' }
adapters:
  - name: q
    environmentVariables: { MCP_PROXY_URL: 'https://%E0%A4@host/mcp' }
`);
  assert.equal(
    result.diagnostics.map((d) => `${d.path}: ${d.message}`),
    [
      'servers.bad.url: has a user or password that is not valid percent-encoding (such as %FF)',
      'adapters[0].environmentVariables.MCP_PROXY_URL: has a user or password that is not valid percent-encoding (such as %FF)',
    ],
  );
});

test('a URL the schema takes but Node cannot use (a port past 65535) is an error, servers and jwt alike', () => {
  // RFC 3986 allows any port digits; new URL() throws, and did so in a running proxy on reload.
  const result = load(`
auth:
  jwt: { issuer: 'https://login.example:70000/', audience: x, jwksUri: 'https://keys.example:99999/' }
servers:
  bad: { url: 'https://host:99999/mcp' }
`);
  const because = 'is not a URL that can be used (a port past 65535, say)';
  assert.equal(
    result.diagnostics.map((d) => `${d.path}: ${d.message}`),
    [`servers.bad.url: ${because}`, `auth.jwt.issuer: ${because}`, `auth.jwt.jwksUri: ${because}`],
  );
});

test('where the JWT keys come from over plain http is a warning, unless on this host', () => {
  const warnings = (jwt: string) =>
    load(`auth:\n  jwt: ${jwt}\nservers: { a: { url: 'https://host/mcp' } }\n`).diagnostics.map(
      (d) => `${d.severity} ${d.path}`,
    );
  // The issuer's discovery document gives the keys.
  assert.equal(warnings("{ issuer: 'http://login.example/', audience: x }"), ['warning auth.jwt.issuer']);
  assert.equal(
    warnings("{ issuer: 'https://login.example/', audience: x, jwksUri: 'http://keys.example/k' }"),
    ['warning auth.jwt.jwksUri'],
  );
  // With jwksUri the issuer is only compared with iss; keys from this host are fine.
  assert.equal(
    warnings("{ issuer: 'http://login.example/', audience: x, jwksUri: 'http://127.0.0.1:9000/k' }"),
    [],
  );
});

test('with the workload identity, a configured Authorization is a warning (never sent); a blank scope an error', () => {
  const diagnostics = (extra: string) =>
    load(`servers:\n  r: { url: 'https://host/mcp', useWorkloadIdentity: true, ${extra} }\n`).diagnostics.map(
      (d) => `${d.severity} ${d.path}: ${d.message}`,
    );
  assert.equal(diagnostics("scope: 'api://x/.default', headers: { authorization: 'Bearer k' }"), [
    "warning servers.r.headers.authorization: is never sent: with useWorkloadIdentity, the identity's token is the Authorization header",
  ]);
  assert.equal(diagnostics("scope: '   '"), [
    'error servers.r.scope: must be one scope, without spaces, such as api://<app-id>/.default',
  ]);
});

test('requiredRoles without auth.jwt is a warning, but not when auth is given and invalid', () => {
  const warnings = (auth: string) =>
    load(`${auth}servers:\n  a: { command: a, requiredRoles: [r] }\n`)
      .diagnostics.filter((d) => d.severity === 'warning')
      .map((d) => `${d.path}: ${d.message}`);
  assert.equal(warnings(''), [
    'servers.a: requiredRoles/requiredScopes are only checked for JWT callers, and `auth.jwt` is not configured',
  ]);
  // The jwt is there, and wrong: that error is what to fix, and saying it is missing would mislead.
  assert.equal(warnings('auth:\n  jwt: { issuer: 5 }\n'), []);
  assert.equal(warnings("auth:\n  jwt: { issuer: 'https://login.example/', audience: x }\n"), []);
});

test('limits.maxBodyBytes stops at 256 MiB: a larger body could not be decoded to text', () => {
  // With 1 GiB allowed, a 540 MiB POST to a stdio server threw ERR_STRING_TOO_LONG and the process died.
  valid('limits: { maxBodyBytes: 268435456 }\nservers: {}\n');
  const result = load('limits: { maxBodyBytes: 268435457 }\nservers: {}\n');
  assert.equal(
    result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.path),
    ['limits.maxBodyBytes'],
  );
});

test('gateway-only fields are accepted and reported as ignored, with their positions', () => {
  const result = load(`{"adapters": [${seed('azure-remote')}]}`);
  const ignored = result.diagnostics
    .filter((d) => d.severity === 'warning')
    .map((d) => `${d.path}@${d.line}`);
  assert.equal(ignored, ['adapters[0].imageName@3', 'adapters[0].imageVersion@4']);
});

test('defaults apply to every server unless it sets its own; built-in defaults fill the rest', () => {
  const manifest = valid(`
defaults: { isolation: session, idleTimeout: 2m, restart: never }
servers:
  a: { command: a }
  b: { command: b, isolation: shared, idleTimeout: 500 }
  r: { url: http://r/mcp }
`);
  const [a, b, r] = manifest.servers as [StdioServerSpec, StdioServerSpec, RemoteServerSpec];
  assert.equal([a.isolation, a.idleTimeoutMs, a.restart, a.startup], ['session', 120_000, 'never', 'eager']);
  assert.equal([b.isolation, b.idleTimeoutMs], ['shared', 500]);
  assert.equal([r.idleTimeoutMs, r.timeoutMs, r.useWorkloadIdentity], [120_000, 600_000, false]);
});

test('cwd defaults to the manifest directory and relative paths resolve against it', () => {
  const manifest = valid(
    'servers:\n  a: { command: a }\n  b: { command: b, cwd: tools }\n  c: { command: c, cwd: /srv }\n',
  );
  assert.equal(
    (manifest.servers as StdioServerSpec[]).map((s) => s.cwd),
    ['/etc/mcp-proxy', '/etc/mcp-proxy/tools', '/srv'],
  );
});

test('interpolated values are typed by the schema: a port from the environment is a number', () => {
  const manifest = valid(
    'listen: { port: "${PORT:-8000}" }\nservers:\n  a: { command: a, env: { DEBUG: 1 } }\n',
    {
      PORT: '9001',
    },
  );
  assert.is(manifest.listen.port, 9001);
  assert.equal((manifest.servers[0] as StdioServerSpec).env, { DEBUG: '1' });
});

test('a key with no value is an error at its key, never 0, "" or false', () => {
  // ajv's coerceTypes read each of these as 0, "" or false, and the manifest was valid: no timeouts at
  // all, a random port, an empty argument or variable.
  const result = load(`
listen: { port: }
defaults: { timeout: , idleTimeout: , drainTimeout: }
limits: { headersTimeout: , requestTimeout: ~ }
servers:
  a:
    command: node
    args: [x, null]
    env: { X: }
    disabled:
  r: { url: 'https://host/mcp', scope: }
  b:
`);
  assert.is(result.manifest, undefined);
  assert.equal(
    result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.path}: ${d.message}`),
    [
      '2:11 error listen.port: has no value: give it one, or remove it',
      '3:13 error defaults.timeout: has no value: give it one, or remove it',
      '3:24 error defaults.idleTimeout: has no value: give it one, or remove it',
      '3:39 error defaults.drainTimeout: has no value: give it one, or remove it',
      '4:11 error limits.headersTimeout: has no value: give it one, or remove it',
      '4:29 error limits.requestTimeout: has no value: give it one, or remove it',
      "8:15 error servers.a.args[1]: has no value (write '' for empty text): give it one, or remove it",
      "9:12 error servers.a.env.X: has no value (write '' for empty text): give it one, or remove it",
      '10:5 error servers.a.disabled: has no value: give it one, or remove it',
      '11:33 error servers.r.scope: has no value: give it one, or remove it',
      '12:3 error servers.b: has no value: give it one, or remove it',
    ],
  );
});

test('a key with no value counts as absent to the schema, and a wrong key is still named as wrong', () => {
  const lines = (text: string) => load(text).diagnostics.map((d) => `${d.path}: ${d.message}`);
  // `url:` with nothing does not make a stdio server both kinds, nor `args:` a remote server's.
  assert.equal(lines("servers:\n  a: { command: node, url: }\n  r: { url: 'https://host/mcp', args: }\n"), [
    'servers.a.url: has no value: give it one, or remove it',
    'servers.r.args: has no value: give it one, or remove it',
  ]);
  assert.equal(lines('servers:\n  a: { command: node, comand: }\n  Bad:\n'), [
    'servers.Bad: "Bad" is not a valid name: use a lowercase DNS label (a-z, 0-9 and "-", 1 to 63 characters, starting and ending with a letter or digit)',
    'servers.a.comand: unknown key "comand"; did you mean "command"?',
  ]);
});

test("text from the environment is still typed by the schema; an empty variable's text is not no value", () => {
  const manifest = valid(
    'listen: { port: "${PORT}" }\nservers:\n  a: { command: a, disabled: "${OFF}", env: { E: "${E}" } }\n',
    { PORT: '9002', OFF: 'false', E: '' },
  );
  assert.is(manifest.listen.port, 9002);
  assert.is(manifest.servers[0]!.disabled, false);
  assert.equal((manifest.servers[0] as StdioServerSpec).env, { E: '' });
});

test('secret values never appear in messages, even when the value is what is wrong', () => {
  const result = load('servers:\n  r:\n    url: "${SECRET_URL}"\n', { SECRET_URL: 'hunter2-not-a-url' });
  assert.ok(result.diagnostics.length > 0);
  for (const d of result.diagnostics) assert.not.match(d.message, 'hunter2');
});

test('a disabled server is kept, marked disabled', () => {
  const manifest = valid('servers:\n  a: { command: a, disabled: true }\n');
  assert.is(manifest.servers[0]!.disabled, true);
});

test('a manifest with no servers is valid, with a warning', () => {
  const result = load('listen: { port: 8000 }\n');
  assert.ok(result.manifest);
  assert.equal(
    result.diagnostics.map((d) => d.severity),
    ['warning'],
  );
});

test('problems in several entries are all reported in one pass, valid entries still checked', () => {
  const result = load(`
servers:
  bad: { command: 1, args: nope }
  typo: { comand: x }
adapters:
  - name: q
    environmentVariables: { MCP_COMMAND: x, MCP_ARGS: "'open" }
`);
  assert.equal(
    result.diagnostics.map((d) => d.path),
    ['servers.bad.args', 'servers.typo', 'servers.typo.comand', 'adapters[0].environmentVariables.MCP_ARGS'],
  );
});

test('every example manifest validates', () => {
  const dir = fromRoot('examples');
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(files.length >= 6);
  for (const file of files) {
    const result = loadManifest({
      file,
      bytes: readFileSync(`${dir}/${file}`),
      env: { INTERNAL_MCP_KEY: 'example-key' },
      baseDir: dir,
    });
    assert.equal(
      result.diagnostics.filter((d) => d.severity === 'error'),
      [],
      file,
    );
  }
});

test('the default manifest validates', () => {
  const result = loadManifest({
    file: 'mcp-proxy.yaml',
    bytes: readFileSync(fromRoot('mcp-proxy.yaml')),
    env: {},
    baseDir: fromRoot(),
  });
  assert.ok(result.manifest, JSON.stringify(result.diagnostics));
});

test.run();
