import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root, from the compiled test's location (dist/test/support/). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export const fromRoot = (...parts: string[]) => join(repoRoot, ...parts);

/** The built CLI, as `npm test` builds it before running tests. */
export const cliPath = fromRoot('dist', 'src', 'cli.js');
