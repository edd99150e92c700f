import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  escapeControl,
  formatDiagnostic,
  formatGithubAnnotation,
  githubCommand,
  type Diagnostic,
} from '../../src/manifest/diagnostics.js';
import { loadManifest } from '../../src/manifest/load.js';

// Keys, names and file names come from whoever wrote the manifest (a pull request, say): printed as they
// are, a newline in one starts a line of its own, and in CI a line such as `::error file=…::` is a
// workflow command.
const INJECTED = '\n::error file=README.md,line=1::pwned';

const diagnostic = (over: Partial<Diagnostic>): Diagnostic => ({
  severity: 'error',
  file: 'mcp-proxy.yaml',
  line: 2,
  column: 3,
  path: 'servers.a',
  message: 'is wrong',
  ...over,
});

test('unprintable characters are escaped; everything else is left as it is', () => {
  assert.is(escapeControl('a\nb\rc\td'), 'a\\nb\\rc\\td');
  assert.is(escapeControl('\u001b[31mred\u009b2J\u2028\u202e'), '\\u001b[31mred\\u009b2J\\u2028\\u202e');
  assert.is(escapeControl('servers.ünïcødé: "quoted" 100%'), 'servers.ünïcødé: "quoted" 100%');
});

test('a text diagnostic is one line whatever its file, path and message hold', () => {
  const line = formatDiagnostic(
    diagnostic({ file: `x${INJECTED}.yaml`, path: `p${INJECTED}`, message: `m\u001b[2J${INJECTED}` }),
  );
  assert.not.match(line, '\n');
  assert.not.match(line, '\u001b');
  assert.is(
    line,
    'x\\n::error file=README.md,line=1::pwned.yaml:2:3 p\\n::error file=README.md,line=1::pwned: ' +
      'm\\u001b[2J\\n::error file=README.md,line=1::pwned',
  );
});

test('a GitHub annotation is one workflow command, its properties and message escaped', () => {
  const line = formatGithubAnnotation(
    diagnostic({ file: `a,b:c${INJECTED}`, message: `m\u001b${INJECTED}` }),
  );
  assert.is(
    line,
    '::error file=a%2Cb%3Ac%0A%3A%3Aerror file=README.md%2Cline=1%3A%3Apwned,line=2,col=3::' +
      'servers.a: m\\u001b%0A::error file=README.md,line=1::pwned',
  );
  assert.is(githubCommand('warning', { file: 'f' }, '50%'), '::warning file=f::50%25');
});

test("a manifest's keys are quoted and escaped in messages, whichever check names them", () => {
  const result = loadManifest({
    file: 'mcp-proxy.yaml',
    bytes: [
      'servers:',
      `  "bad${INJECTED.replace('\n', '\\n')}": { command: x }`,
      '  a: { command: x, "typo\\e[2J": 1, env: { K: "${A\\nB}" } }',
      '  b: { command: x }',
      '  "b\u202e": { command: x }',
      '',
    ].join('\n'),
    env: {},
    baseDir: '/',
  });
  const name = 'is not a valid name: use a lowercase DNS label';
  assert.equal(
    result.diagnostics.map((d) =>
      d.message.replace(/(valid name: use a lowercase DNS label|; known keys:).*/, '$1'),
    ),
    [
      '"${A\\nB}" is not a variable reference: names are letters, digits and "_"',
      `"bad\\n::error file=README.md,line=1::pwned" ${name}`,
      `"b\\u202e" ${name}`,
      'unknown key "typo\\u001b[2J"; known keys:',
    ],
  );
});

test('a duplicate key is quoted and escaped too', () => {
  const result = loadManifest({
    file: 'mcp-proxy.yaml',
    bytes: 'servers:\n  a\u202e: { command: x }\n  a\u202e: { command: y }\n',
    env: {},
    baseDir: '/',
  });
  assert.equal(
    result.diagnostics.map((d) => d.message),
    ['duplicate key "a\\u202e": a key may appear only once in a map'],
  );
});

test.run();
