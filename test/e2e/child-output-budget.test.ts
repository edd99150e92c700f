import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { fixtureCommand, startProxy, waitFor, type RunningProxy } from '../support/proxy.js';
import { MAX_LOGGED_LINE_BYTES } from '../../src/upstream/child.js';
import { LOGGED_LINES_PER_WINDOW, WINDOW_MS } from '../../src/upstream/line-budget.js';

// A child that floods stderr and stdout with long lines costs the proxy's log a bounded number of clipped
// lines per window and one count of the rest; /servers keeps its last lines, clipped likewise.

const COUNT = 1000;
const CHARS = 5000;
const flood = fixtureCommand('output-flood');

const manifest = `
servers:
  flood:
    command: ${JSON.stringify(flood.command)}
    args: ${JSON.stringify([...flood.args, String(COUNT), String(CHARS)])}
`;

type LogLine = { event: string; server?: string; line?: string; lines?: number };

const test = suite<{ proxy: RunningProxy }>('child output budget', {} as { proxy: RunningProxy });

test.before(async (ctx) => {
  ctx.proxy = await startProxy(manifest);
});

test.after(async (ctx) => {
  await ctx.proxy?.stop();
});

const logLines = (proxy: RunningProxy): LogLine[] =>
  proxy
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);

/**
 * `stderr 0 ééé…`, as the proxy logs and keeps it: clipped to whole characters within MAX_LOGGED_LINE_BYTES,
 * saying how many bytes were cut.
 */
const clippedLine = (stream: string, i: number) => {
  const start = `${stream} ${i} `;
  const kept = start + 'é'.repeat(Math.floor((MAX_LOGGED_LINE_BYTES - start.length) / 2));
  const cut = start.length + 2 * CHARS - Buffer.byteLength(kept);
  return `${kept}… [${cut} more bytes cut]`;
};

test('a flood of stderr and stdout lines is logged up to the budget, clipped, then counted', async ({
  proxy,
}) => {
  const suppressed = (event: string) => logLines(proxy).find((l) => l.event === event);
  await waitFor(
    () =>
      suppressed('child-stderr-suppressed') !== undefined &&
      suppressed('child-stdout-suppressed') !== undefined,
    WINDOW_MS + 10_000,
    'the counts of suppressed lines',
  );
  const logged = logLines(proxy);
  for (const [stream, event] of [
    ['stderr', 'child-stderr'],
    ['stdout', 'child-stdout-not-jsonrpc'],
  ] as const) {
    const lines = logged.filter((l) => l.event === event).map((l) => l.line);
    assert.is(lines.length, LOGGED_LINES_PER_WINDOW, `${event} lines logged`);
    assert.is(lines[0], clippedLine(stream, 0));
    const count = suppressed(`child-${stream}-suppressed`)!;
    assert.equal([count.server, count.lines], ['flood', COUNT - LOGGED_LINES_PER_WINDOW]);
  }
  const listing = (await (
    await fetch(`${proxy.url}/servers/flood`, { signal: AbortSignal.timeout(5000) })
  ).json()) as { state: string; stderr: string[] };
  assert.is(listing.state, 'ready');
  assert.is(listing.stderr.length, 200, 'the tail still keeps the last lines');
  assert.is(listing.stderr.at(-1), clippedLine('stderr', COUNT - 1));
});

test.run();
