import { suite as uvuSuite, type Callback, type Test } from 'uvu';

/**
 * uvu's `suite` and `test`, but what a `before` or `after` hook (or its `.each`) throws is printed and
 * fails the run. uvu 0.5.6, its last release, loses it: its runner returns from a `finally`, so a suite
 * whose setup failed counts its tests as not run, prints no error, and the run exits 0; a throwing
 * `after.each` even drops the failure of the test it followed and skips the rest of the file. Every test file imports from here
 * (`suite-hooks.test.ts` holds them to it).
 */
export function suite<T = Record<string, unknown>>(name?: string, context?: T): Test<T> {
  const test = uvuSuite<T>(name, context);
  for (const which of ['before', 'after'] as const) {
    const register = test[which];
    test[which] = Object.assign((hook: Callback<T>) => register(surfaced(which, hook)), {
      each: (hook: Callback<T>) => register.each(surfaced(`${which}.each`, hook)),
    });
  }
  return test;
}

export const test = suite();

let hooksFailed = 0;
// uvu sets the exit code as its run ends, before the process exits: this comes after it.
process.on('exit', () => {
  if (hooksFailed > 0) process.exitCode = 1;
});

function surfaced<T>(which: string, hook: Callback<T>): Callback<T> {
  return async (context) => {
    try {
      await hook(context);
    } catch (error) {
      hooksFailed++;
      const where = context.__suite__ ? ` of suite "${context.__suite__}"` : '';
      process.stderr.write(`\n  ${which} hook${where} failed: ${(error as Error).stack ?? String(error)}\n`);
      throw error;
    }
  };
}
