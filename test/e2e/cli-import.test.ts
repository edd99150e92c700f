import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fromRoot } from '../support/paths.js';
import { runCli } from '../support/run-cli.js';
import { FIXTURE_ENV as ENV } from '../fixtures/import/env.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-import-'));
const write = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const fixture = (path: string) => fromRoot('test', 'fixtures', 'import', path);
const claude = fixture('claude_desktop_config.json');
const vscode = fixture('vscode/mcp.json');
const payloads = fixture('adapter-payloads.json');

const noteLines = (stderr: string) => stderr.split('\n').filter(Boolean);

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('imports several client configurations into one manifest that validate accepts', async () => {
  const r = await runCli(['import', claude, vscode, payloads]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith('# yaml-language-server: $schema=./schema/mcp-proxy.schema.json\n'));
  const manifest = write('imported.yaml', r.stdout);
  const v = await runCli(['validate', manifest], { env: ENV });
  assert.is(v.code, 0, v.stdout);
  assert.match(v.stdout, `${manifest}: valid, 16 servers`);
});

test('a name holding a newline cannot forge a line of its own in the notes', async () => {
  const forged = write(
    'forged.json',
    JSON.stringify({ mcpServers: { 'x\n::error file=README.md,line=1::forged': { nothing: true } } }),
  );
  const r = await runCli(['import', forged]);
  assert.ok(
    noteLines(r.stderr).every((l) => /^(note|error): /.test(l)),
    r.stderr,
  );
  assert.match(r.stderr, 'x\\n::error');
});

test('notes go to stderr, one per line, and say which format each file was read as', async () => {
  const r = await runCli(['import', claude, vscode]);
  assert.is(r.code, 0, r.stderr);
  const lines = noteLines(r.stderr);
  assert.ok(
    lines.every((l) => l.startsWith('note: ')),
    r.stderr,
  );
  assert.ok(lines.includes(`note: ${claude}: read as a Claude Desktop configuration (mcpServers)`));
  assert.ok(lines.includes(`note: ${vscode}: read as a VS Code MCP configuration (servers)`));
  assert.ok(lines.some((l) => l.includes('"github" is already servers.github')));
  assert.not.match(r.stdout, 'note:');
});

test('--format json prints a JSON manifest that validate accepts too', async () => {
  const r = await runCli(['import', '--format', 'json', vscode, payloads]);
  assert.is(r.code, 0, r.stderr);
  const parsed = JSON.parse(r.stdout);
  assert.is(parsed.$schema, './schema/mcp-proxy.schema.json');
  assert.is(parsed.adapters.length, 4);
  const manifest = write('imported.json', r.stdout);
  const v = await runCli(['validate', manifest], { env: ENV });
  assert.is(v.code, 0, v.stdout);
  assert.match(v.stdout, 'valid, 10 servers');
});

test('the loader warnings the manifest will get are said once per message', async () => {
  const r = await runCli(['import', payloads]);
  assert.is(r.code, 0, r.stderr);
  const ignored = noteLines(r.stderr).filter((l) =>
    l.includes('ignored: all adapters run in this one proxy'),
  );
  assert.is(ignored.length, 1);
  assert.match(ignored[0]!, 'adapters[3].imageVersion');
});

test('a file that is not a configuration exits 1 and prints no manifest', async () => {
  const other = write('package.json', '{"name": "x", "version": "1.0.0"}');
  const r = await runCli(['import', claude, other]);
  assert.is(r.code, 1);
  assert.is(r.stdout, '');
  assert.match(r.stderr, `error: ${other}: not a configuration import reads`);
  const broken = write('broken.json', '{ "mcpServers": { "a": { "command": "node" } }');
  const b = await runCli(['import', broken]);
  assert.is(b.code, 1);
  assert.match(b.stderr, `error: ${broken}: not JSON`);
});

test('nothing importable exits 1', async () => {
  const empty = write('empty.json', '{"mcpServers": {}}');
  const r = await runCli(['import', empty]);
  assert.is(r.code, 1);
  assert.is(r.stdout, '');
  assert.match(r.stderr, 'error: nothing to import');
});

test('an unreadable file exits 2; so does bad usage', async () => {
  const missing = await runCli(['import', claude, join(dir, 'missing.json')]);
  assert.is(missing.code, 2);
  assert.is(missing.stdout, '');
  assert.match(missing.stderr, 'missing.json: no such file');
  const none = await runCli(['import']);
  assert.is(none.code, 2);
  assert.match(none.stderr, 'import needs at least one FILE');
  assert.match(none.stderr, 'Usage: mcp-proxy import');
  const format = await runCli(['import', '--format', 'toml', claude]);
  assert.is(format.code, 2);
  assert.match(format.stderr, '--format must be yaml or json');
});

test('--help and --version', async () => {
  const { version } = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8'));
  const help = await runCli(['import', '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, 'Usage: mcp-proxy import FILE... [--format yaml|json]');
  assert.is((await runCli(['import', '--version'])).stdout.trim(), version);
  assert.match((await runCli(['--help'])).stdout, 'import FILE...');
});

test.run();
