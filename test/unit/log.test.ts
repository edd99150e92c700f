import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { createLogger, parseLevel, type Level } from '../../src/log.js';
import { fromRoot } from '../support/paths.js';
import { within } from '../support/proxy.js';

/** A logger whose writes are kept, one array element per write. */
function recorded(minimum?: Level) {
  const writes: string[] = [];
  const log = createLogger(minimum, (lines) => writes.push(lines));
  const events = () =>
    writes
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { event: string }).event);
  return { log, writes, events };
}

/** Resolves after the logger's own flush, which is scheduled for the same turn of the event loop. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('info lines are written together on the next turn of the event loop, in order', async () => {
  const { log, writes, events } = recorded();
  log.info('one');
  log.warn('two');
  log.info('three');
  assert.equal(writes, [], 'nothing is written synchronously');
  await nextTurn();
  assert.is(writes.length, 1, 'one write for the turn');
  assert.equal(events(), ['one', 'two', 'three']);
  log.info('four');
  await nextTurn();
  assert.equal(events(), ['one', 'two', 'three', 'four']);
});

test('an error line is written at once, after the lines buffered before it', async () => {
  const { log, writes, events } = recorded();
  log.info('before');
  log.error('failed', { reason: 'x' });
  assert.equal(events(), ['before', 'failed']);
  await nextTurn();
  assert.is(writes.length, 1, 'nothing is written twice');
});

test('each line is one JSON object: time, level, event, then the fields', async () => {
  const { log, writes } = recorded();
  log.info('request', { requestId: 'r-1', status: 200, ms: 1.5 });
  log.warn('no-fields');
  await nextTurn();
  const [first, second, rest] = writes[0]!.split('\n');
  assert.match(
    first!,
    /^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"info","event":"request","requestId":"r-1","status":200,"ms":1\.5\}$/,
  );
  assert.match(second!, /^\{"time":"[^"]+","level":"warn","event":"no-fields"\}$/);
  assert.is(rest, '', 'the last line ends with a newline');
});

test('levels below the minimum are neither written nor reported enabled', async () => {
  const { log, writes, events } = recorded('warn');
  assert.equal(
    (['debug', 'info', 'warn', 'error'] as const).map((level) => log.enabled(level)),
    [false, false, true, true],
  );
  log.debug('d');
  log.info('i');
  await nextTurn();
  assert.equal(writes, []);
  log.warn('w');
  await nextTurn();
  assert.equal(events(), ['w']);
});

test('LOG_LEVEL is read in any case, with warning for warn; unset or empty is info', () => {
  const levels = ['debug', 'INFO', 'Warn', 'WARNING', 'warning', 'ERROR', ' error ', '', undefined].map(
    (text) => parseLevel(text),
  );
  assert.equal(
    levels.map((s) => s.level),
    ['debug', 'info', 'warn', 'warn', 'warn', 'error', 'error', 'info', 'info'],
  );
  assert.ok(levels.every((s) => s.unknown === undefined));
});

test('a LOG_LEVEL that names no level means info, and the logger says so once, naming the accepted ones', async () => {
  for (const text of ['verbose', 'toString']) {
    const setting = parseLevel(text);
    assert.equal(setting, { level: 'info', unknown: text });
    const writes: string[] = [];
    const log = createLogger(setting, (lines) => writes.push(lines));
    log.info('next');
    await nextTurn();
    const lines = writes
      .join('')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(
      lines.map(({ time: _, ...rest }) => rest),
      [
        {
          level: 'warn',
          event: 'log-level-unknown',
          LOG_LEVEL: text,
          accepted: 'debug, info, warn (or warning), error; in any case',
          using: 'info',
        },
        { level: 'info', event: 'next' },
      ],
    );
  }
});

/** Runs a module that logs `count` info lines, then ends as `ending` says; resolves with its stderr. */
async function logThenEnd(count: number, ending: string): Promise<{ code: number | null; stderr: string }> {
  const logModule = pathToFileURL(fromRoot('dist', 'src', 'log.js')).href;
  const script = `import { createLogger } from ${JSON.stringify(logModule)};
const log = createLogger('info');
for (let i = 0; i < ${count}; i++) log.info('line', { i });
${ending}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  try {
    const code = await within(
      new Promise<number | null>((resolve) => child.once('close', resolve)),
      `the child to end after ${ending}`,
    );
    return { code, stderr };
  } finally {
    // Still running only if the wait timed out: it must not outlive the test.
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
    }
  }
}

test('buffered lines are written when the process exits, by process.exit() or by a crash', async () => {
  for (const [ending, expectedCode] of [
    ['process.exit(3);', 3],
    ['throw new Error("crashed");', 1],
  ] as const) {
    const { code, stderr } = await logThenEnd(1000, ending);
    assert.is(code, expectedCode, ending);
    const numbers = stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { i: number }).i);
    assert.equal(numbers, [...Array(1000).keys()], `every line, in order, after ${ending}`);
  }
});

test.run();
