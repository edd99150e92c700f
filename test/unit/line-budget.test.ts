import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { LineBudget } from '../../src/upstream/line-budget.js';
import { within } from '../support/proxy.js';

test('past its limit a window logs no more lines, and reports how many it suppressed when it ends', async () => {
  let report = (_lines: number) => {};
  const reported = new Promise<number>((resolve) => (report = resolve));
  const budget = new LineBudget(report, 3, 50);
  const taken = Array.from({ length: 10 }, () => budget.take());
  assert.equal(taken, [true, true, true, false, false, false, false, false, false, false]);
  assert.is(await within(reported, 'the report'), 7);
  assert.ok(budget.take(), 'the next window logs again');
});

test('a window that stays within its limit starts over without a report', () => {
  let clock = 0;
  const reports: number[] = [];
  const budget = new LineBudget(
    (lines) => reports.push(lines),
    2,
    1000,
    () => clock,
  );
  assert.equal([budget.take(), budget.take()], [true, true]);
  clock = 1000;
  assert.equal([budget.take(), budget.take()], [true, true]);
  assert.equal(reports, []);
});

test.run();
