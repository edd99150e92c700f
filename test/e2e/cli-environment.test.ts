import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { runCli } from '../support/run-cli.js';

// How serve reads its environment, seen from outside. The manifest is missing on purpose: serve stops
// there (exit 2), after its logger is made, so nothing is started.

const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: string; event: string; LOG_LEVEL?: string });

test('an unknown LOG_LEVEL is one warning log line naming it; a known one in any case is none', async () => {
  const unknown = await runCli(['serve', '-c', 'missing.yaml'], { env: { LOG_LEVEL: 'verbose' } });
  assert.is(unknown.code, 2, unknown.stderr);
  assert.equal(
    logLines(unknown.stderr).map((l) => [l.level, l.event, l.LOG_LEVEL]),
    [['warn', 'log-level-unknown', 'verbose']],
  );
  for (const level of ['WARN', 'warning', 'Debug']) {
    const known = await runCli(['serve', '-c', 'missing.yaml'], { env: { LOG_LEVEL: level } });
    assert.is(known.code, 2, known.stderr);
    assert.equal(logLines(known.stderr), [], level);
  }
});

test.run();
