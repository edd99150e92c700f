import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** bench/ (this file runs from bench/dist/). */
export const benchDir = fileURLToPath(new URL('../', import.meta.url));
export const repoRoot = join(benchDir, '..');
export const fromBench = (...parts: string[]) => join(benchDir, ...parts);
export const fromRoot = (...parts: string[]) => join(repoRoot, ...parts);

export const node = process.execPath;
/** The proxy's CLI and the fixture, as `npm run build` leaves them. */
export const cliPath = fromRoot('dist', 'src', 'cli.js');
/** The node flags the CLI declares on its first line: the proxy is run as its installed command runs. */
export const cliNodeFlags = (): string[] =>
  (/^#!\/usr\/bin\/env -S node(.*)$/.exec(readFileSync(cliPath, 'utf8').split('\n', 1)[0]!)?.[1] ?? '')
    .trim()
    .split(' ')
    .filter(Boolean);
export const echoFixture = fromRoot('dist', 'test', 'fixtures', 'servers', 'echo.js');
/** What identifies a fixture process in /proc/<pid>/cmdline. */
export const FIXTURE_MARK = 'fixtures/servers/echo.js';

export const nativeServer = fromBench('dist', 'native-server.js');
export const tcpRelay = fromBench('dist', 'tcp-relay.js');
export const httpFloor = fromBench('dist', 'http-floor.js');
export const loopbackPreload = fromBench('dist', 'loopback.js');
export const supergatewayBin = fromBench('node_modules', 'supergateway', 'dist', 'index.js');
export const mcpProxyBin = fromBench('node_modules', 'mcp-proxy', 'dist', 'bin', 'mcp-proxy.mjs');
