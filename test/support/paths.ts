import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root, from the compiled test's location (dist/test/support/). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export const fromRoot = (...parts: string[]) => join(repoRoot, ...parts);

/** The built CLI, as `npm test` builds it before running tests. */
export const cliPath = fromRoot('dist', 'src', 'cli.js');

/** How tests start the CLI: with the node flags it declares, as the installed command runs it. */
export const cliArgs = (): string[] => [...cliNodeFlags(), cliPath];

/** The node flags the CLI declares on its first line (`#!/usr/bin/env -S node …`): how the proxy runs. */
export function cliNodeFlags(): string[] {
  const shebang = readFileSync(fromRoot('src', 'cli.ts'), 'utf8').split('\n', 1)[0]!;
  const match = /^#!\/usr\/bin\/env -S node((?: --\S+)*)$/.exec(shebang);
  if (!match) throw new Error(`src/cli.ts does not start with "#!/usr/bin/env -S node [flags]": ${shebang}`);
  return match[1]!.trim().split(' ').filter(Boolean);
}
