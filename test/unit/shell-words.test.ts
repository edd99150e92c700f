import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { splitShellWords } from '../../src/manifest/shell-words.js';

const words = (line: string) => {
  const result = splitShellWords(line);
  if ('error' in result) throw new Error(result.error);
  return result.words;
};

test('splits on runs of white space', () => {
  assert.equal(words('  -y   @azure/mcp@latest\tserver start '), [
    '-y',
    '@azure/mcp@latest',
    'server',
    'start',
  ]);
});

test('an empty line has no words, an empty quoted string is one empty word', () => {
  assert.equal(words(''), []);
  assert.equal(words('a "" b'), ['a', '', 'b']);
});

test('single quotes keep everything literally, including backslashes and $', () => {
  assert.equal(words(`--name 'hello world' '\\n $HOME'`), ['--name', 'hello world', '\\n $HOME']);
});

test('double quotes allow escaped quotes and backslashes, and keep other backslashes', () => {
  assert.equal(words('"say \\"hi\\"" "a\\\\b" "c\\d"'), ['say "hi"', 'a\\b', 'c\\d']);
});

test('quoted parts join the word they touch, as in a shell', () => {
  assert.equal(words(`--from=git+https://x/'my repo'.git`), ['--from=git+https://x/my repo.git']);
});

test('a backslash outside quotes escapes the next character', () => {
  assert.equal(words('a\\ b c'), ['a b', 'c']);
});

test('shell operators are plain characters: nothing is ever run through a shell', () => {
  assert.equal(words('a | b ; c && d > e $(f)'), ['a', '|', 'b', ';', 'c', '&&', 'd', '>', 'e', '$(f)']);
});

test('the gateway payloads split as the Python shim split them', () => {
  assert.equal(
    words(
      '--prerelease=allow --from git+https://github.com/azure-ai-foundry/mcp-foundry.git run-azure-ai-foundry-mcp',
    ),
    [
      '--prerelease=allow',
      '--from',
      'git+https://github.com/azure-ai-foundry/mcp-foundry.git',
      'run-azure-ai-foundry-mcp',
    ],
  );
});

test('unbalanced quotes and a trailing backslash are errors that say where', () => {
  assert.equal(splitShellWords(`-y 'oops`), { error: 'unbalanced single quote at character 4' });
  assert.equal(splitShellWords('a "b'), { error: 'unbalanced double quote at character 3' });
  assert.equal(splitShellWords('a \\'), { error: 'a trailing backslash escapes nothing' });
});

test.run();
