import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cliArgs, fromRoot } from '../support/paths.js';
import { runCli, type CliResult } from '../support/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-validate-'));
const write = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const good = write('good.yaml', 'servers:\n  a:\n    command: node\n');
const bad = write('bad.yaml', 'servers:\n  a:\n    command: node\n    agrs: [x]\n');

/** runCli, with `input` written to the CLI's standard input, a pipe. */
function runCliWithInput(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...cliArgs(), ...args],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    // The CLI stops reading past the size limit, and may exit before all of `input` is written.
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
  });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a valid manifest exits 0 and says how many servers it declares', async () => {
  const r = await runCli(['validate', good]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `${good}: valid, 1 server`);
});

test('an invalid manifest exits 1 with a positioned message', async () => {
  const r = await runCli(['validate', bad]);
  assert.is(r.code, 1);
  assert.match(r.stdout, `${bad}:4:5 servers.a.agrs: unknown key "agrs"; did you mean "args"?`);
});

test('several files are all checked; any invalid one makes the exit 1', async () => {
  const r = await runCli(['validate', good, bad]);
  assert.is(r.code, 1);
  assert.match(r.stdout, `${good}: valid`);
  assert.match(r.stdout, `${bad}: invalid, 1 error`);
});

test('an unreadable file exits 2', async () => {
  const r = await runCli(['validate', join(dir, 'missing.yaml')]);
  assert.is(r.code, 2);
  assert.match(r.stdout, 'missing.yaml: no such file');
  const d = await runCli(['validate', dir]);
  assert.is(d.code, 2);
  assert.match(d.stdout, 'is a directory');
});

test('- reads the manifest from standard input, and a pipe reads as well as a file', async () => {
  const dash = await runCliWithInput(['validate', '-'], 'servers:\n  a:\n    command: node\n    agrs: [x]\n');
  assert.is(dash.code, 1, dash.stdout + dash.stderr);
  assert.match(dash.stdout, '<stdin>:4:5 servers.a.agrs: unknown key "agrs"');
  assert.match(dash.stdout, '<stdin>: invalid, 1 error');
  // A pipe opened by name, as `validate <(…)` gives it: read from where it is, not at an offset.
  const fifo = join(dir, 'pipe.yaml');
  execFileSync('mkfifo', [fifo]);
  const named = runCli(['validate', fifo]);
  // Opening a pipe to write waits for its reader; a reader that gave up closes it under the writer.
  await writeFile(fifo, 'servers:\n  a: { command: node }\n').catch(() => {});
  const piped = await named;
  assert.is(piped.code, 0, piped.stdout + piped.stderr);
  assert.match(piped.stdout, `${fifo}: valid, 1 server`);
  // Still bounded: an endless stream is not read to its end.
  const large = await runCliWithInput(['validate', '-'], `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
  assert.is(large.code, 1, large.stdout + large.stderr);
  assert.match(large.stdout, '<stdin>:1:1 the file is larger than 1 MiB');
});

test('bad usage exits 2 with the command help on stderr', async () => {
  const unknown = await runCli(['validate', '--bogus']);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, 'Usage: mcp-proxy validate');
  const format = await runCli(['validate', '--format', 'xml', good]);
  assert.is(format.code, 2);
  assert.match(format.stderr, '--format must be text, json or github');
  const command = await runCli(['frobnicate']);
  assert.is(command.code, 2);
  assert.match(command.stderr, 'unknown command "frobnicate"');
});

test('--format github prints workflow annotations', async () => {
  const r = await runCli(['validate', '--format', 'github', bad]);
  assert.is(r.code, 1);
  assert.match(
    r.stdout,
    `::error file=${bad},line=4,col=5::servers.a.agrs: unknown key "agrs"; did you mean "args"?`,
  );
});

test('--format json is one parseable document with every diagnostic', async () => {
  const r = await runCli(['validate', '-f', 'json', good, bad]);
  assert.is(r.code, 1);
  const report = JSON.parse(r.stdout);
  assert.equal(
    report.files.map((f: { valid: boolean }) => f.valid),
    [true, false],
  );
  assert.equal(report.files[1].diagnostics[0], {
    severity: 'error',
    file: bad,
    line: 4,
    column: 5,
    path: 'servers.a.agrs',
    message: 'unknown key "agrs"; did you mean "args"?',
  });
});

test('with no file it validates ./mcp-proxy.yaml', async () => {
  const sub = mkdtempSync(join(dir, 'cwd-'));
  writeFileSync(join(sub, 'mcp-proxy.yaml'), 'servers:\n  x: { url: "https://example.com/mcp" }\n');
  const r = await runCli(['validate'], { cwd: sub });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, 'mcp-proxy.yaml: valid, 1 server');
});

test('with no file it validates $MCP_PROXY_CONFIG, as serve would load it', async () => {
  // In the image MCP_PROXY_CONFIG names the mounted manifest: `validate` there checks what serve loads.
  const sub = mkdtempSync(join(dir, 'cwd-'));
  writeFileSync(join(sub, 'mcp-proxy.yaml'), 'servers:\n  x: { url: "https://example.com/mcp" }\n');
  const r = await runCli(['validate'], { cwd: sub, env: { MCP_PROXY_CONFIG: bad } });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, `${bad}: invalid, 1 error`);
  assert.not.match(r.stdout, 'mcp-proxy.yaml: valid');
  // And serve loads that same file: it refuses to start on it, naming it.
  const serve = await runCli(['serve', '--port', '0'], { cwd: sub, env: { MCP_PROXY_CONFIG: bad } });
  assert.is(serve.code, 1, serve.stdout + serve.stderr);
  assert.match(serve.stderr, `${bad}:4:5 servers.a.agrs`);
});

test('interpolation reads the environment of the validate process', async () => {
  const file = write(
    'env.yaml',
    'servers:\n  r:\n    url: https://example.com/mcp\n    headers: { X-Key: "${KEY}" }\n',
  );
  assert.is((await runCli(['validate', file])).code, 1);
  assert.is((await runCli(['validate', file], { env: { KEY: 'k' } })).code, 0);
});

test('a key with no value is invalid for validate and serve alike, not read as 0', async () => {
  const file = write('no-value.yaml', 'defaults: { timeout: }\nservers:\n  a: { command: node }\n');
  const r = await runCli(['validate', file]);
  assert.is(r.code, 1, r.stdout);
  assert.match(r.stdout, `${file}:1:13 defaults.timeout: has no value: give it one, or remove it`);
  const serve = await runCli(['serve', '-c', file, '--port', '0']);
  assert.is(serve.code, 1, serve.stdout + serve.stderr);
  assert.match(serve.stderr, 'defaults.timeout: has no value');
});

test("nothing in a manifest or a file's name can start a line of its own in the output", async () => {
  // In GitHub Actions a line `::error file=…::` is a workflow command: a pull request could forge one.
  const forged = '\n::error file=README.md,line=1::forged';
  const file = write('forge.yaml', `servers:\n  "x${forged.replace('\n', '\\n')}": { command: node }\n`);
  const missing = join(dir, `missing${forged}.yaml`);
  for (const format of ['text', 'github']) {
    const r = await runCli(['validate', '--format', format, file, missing]);
    assert.is(r.code, 2, r.stdout);
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.is(lines.length, 3, r.stdout);
    assert.not.ok(
      lines.some((l) => l.startsWith('::error file=README.md')),
      r.stdout,
    );
  }
});

test('output that cannot be written is one line on stderr and exit 2, not a stack trace and "invalid"', async () => {
  const full = openSync('/dev/full', 'w');
  try {
    const child = spawn(process.execPath, [...cliArgs(), 'validate', good], {
      stdio: ['ignore', full, 'pipe'],
      env: { PATH: process.env.PATH ?? '' },
      timeout: 20_000,
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.is(code, 2, stderr);
    assert.is(stderr, 'mcp-proxy: cannot write output: ENOSPC: no space left on device, write\n');
  } finally {
    closeSync(full);
  }
});

test('schema prints the shipped JSON Schema exactly', async () => {
  const r = await runCli(['schema']);
  assert.is(r.code, 0);
  assert.is(r.stdout, readFileSync(fromRoot('schema', 'mcp-proxy.schema.json'), 'utf8'));
});

test('--help and --version work for every command', async () => {
  const { version } = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8'));
  for (const command of [[], ['serve'], ['validate'], ['schema']]) {
    const help = await runCli([...command, '--help']);
    assert.is(help.code, 0);
    assert.match(help.stdout, 'Usage: mcp-proxy');
    const v = await runCli([...command, '--version']);
    assert.is(v.stdout.trim(), version);
  }
});

test.run();
