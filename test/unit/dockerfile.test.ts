import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { BASE_ENVIRONMENT } from '../../src/upstream/environment.js';
import { cliNodeFlags, cliPath, fromRoot } from '../support/paths.js';
import { fixtureCommand, listeningUrl, stopProcess, postInitialize } from '../support/proxy.js';

// No Docker engine runs in CI, so the image is never built here. What can go wrong without one being
// noticed is checked instead: the Dockerfile's syntax and flags, that its ENTRYPOINT + CMD is a real
// invocation of the CLI this repository builds, that the image's defaults leave both modes (manifest,
// single-server) working, and that the runtime stage holds no more than it should.

const dockerfileText = readFileSync(fromRoot('Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(dockerfileText);
const final = dockerfile.stages.at(-1)!;
const imageEnv = envOf(final);

// Every check dockerfile-utils can be told about is an error here, not a warning: each one is something
// the builder silently does differently from what the line says (a second CMD is ignored, single-quoted
// "JSON" runs through a shell, a relative WORKDIR depends on the stage before, an empty continuation
// line is deprecated and may stop parsing). The checks it always runs (flags, durations, ports, image
// references, undefined base-image variables) are errors already.
const EVERY_CHECK_AN_ERROR: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

test('the Dockerfile passes dockerfile-utils with every check an error', () => {
  const problems = validate(dockerfileText, EVERY_CHECK_AN_ERROR).map(
    (d) => `Dockerfile:${d.range.start.line + 1}: ${text(d.message)}`,
  );
  assert.equal(problems, []);
});

test('the lint is not vacuous: a single-quoted CMD and a duration without unit are caught', () => {
  const broken = dockerfileText
    .replace('CMD ["serve"]', "CMD ['serve']")
    .replace('--interval=30s', '--interval=30');
  const messages = validate(broken, EVERY_CHECK_AN_ERROR).map((d) => text(d.message));
  assert.ok(
    messages.some((m) => /single quotes/.test(m)),
    messages.join('\n'),
  );
  assert.ok(
    messages.some((m) => /missing unit/.test(m)),
    messages.join('\n'),
  );
});

test('the final stage runs the built CLI under tini, in exec form, serving by default', () => {
  const entrypoint = execForm(only(final, 'ENTRYPOINT'));
  assert.equal(entrypoint, ['/usr/bin/tini', '--', 'node', ...cliNodeFlags(), '/app/dist/src/cli.js']);
  assert.equal(execForm(only(final, 'CMD')), ['serve']);
  // The tini at that path is Debian's package, installed in this very stage.
  assert.ok(aptPackages(final).includes('tini'));
});

test('ENTRYPOINT + CMD is a real command: the built CLI answers --help and serve --help', async () => {
  const command = imageCommand();
  const serveHelp = await run([...command, '--help'], {});
  assert.is(serveHelp.code, 0, serveHelp.stderr);
  assert.match(serveHelp.stdout, /^Usage: mcp-proxy serve /);
  // `docker run IMAGE --help` replaces CMD: the arguments follow the ENTRYPOINT directly.
  const entrypointOnly = command.slice(0, -execForm(only(final, 'CMD')).length);
  const mainHelp = await run([...entrypointOnly, '--help'], {});
  assert.is(mainHelp.code, 0, mainHelp.stderr);
  assert.match(mainHelp.stdout, /^mcp-proxy [\d.]+: /);
  assert.match(mainHelp.stdout, /Usage: mcp-proxy <command>/);
});

test('with the image defaults and no manifest mounted, serve names the missing file and exits 2', async () => {
  const { env, cleanup } = imageEnvironment();
  try {
    const result = await run(imageCommand(), env);
    assert.is(result.code, 2, result.stderr);
    assert.match(result.stderr, `${env.MCP_PROXY_CONFIG}: no such file`);
    assert.not.match(result.stderr, /internal error/);
  } finally {
    cleanup();
  }
});

test('the image defaults leave single-server mode working, and the HEALTHCHECK passes against it', async () => {
  const { env, cleanup } = imageEnvironment();
  const echo = fixtureCommand('echo');
  // As `docker run -e MCP_COMMAND=… -e MCP_ARGS=… IMAGE`: MCP_PROXY_CONFIG (set by the image, pointing at
  // nothing) must not get in the way. Loopback and a free port instead of 0.0.0.0:8000, for the test only.
  const command = imageCommand();
  const proxy = spawn(command[0]!, command.slice(1), {
    env: { ...env, HOST: '127.0.0.1', PORT: '0', MCP_COMMAND: echo.command, MCP_ARGS: `'${echo.args[0]}'` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proxy.stderr.on('data', (chunk) => (stderr += chunk));
  try {
    const url = await listeningUrl(proxy, () => stderr);
    const port = new URL(url).port;

    const initialize = await postInitialize(`${url}/mcp`, {}, { protocolVersion: '2025-06-18' });
    assert.is(initialize.status, 200);
    assert.ok(initialize.headers.get('mcp-session-id'), 'a session was opened at /mcp');
    await initialize.body?.cancel();

    const healthy = await run(healthcheckCommand(), { ...env, PORT: port });
    assert.is(healthy.code, 0, `HEALTHCHECK failed against a running proxy: ${healthy.stderr}`);

    assert.is(await stopProcess(proxy), 0, 'SIGTERM stops the proxy cleanly');
    const down = await run(healthcheckCommand(), { ...env, PORT: port });
    assert.is(down.code, 1, 'HEALTHCHECK fails once nothing listens');
  } finally {
    await stopProcess(proxy);
    cleanup();
  }
});

test('HEALTHCHECK probes /healthz on the port the image exposes and listens on', () => {
  const check = healthcheckCommand(true);
  assert.is(check[0], 'node', 'no curl in a slim image: Node itself fetches');
  const script = check.join(' ');
  assert.match(script, /\/healthz/);
  const exposed = only(final, 'EXPOSE').split(/\s+/);
  assert.equal(exposed, ['8000']);
  assert.is(imageEnv.PORT, '8000');
  assert.is(/PORT\s*\|\|\s*(\d+)/.exec(script)?.[1], '8000', 'the fallback port is the exposed one');
  const flags = only(final, 'HEALTHCHECK');
  assert.match(flags, /--start-period=\d+m/, 'first npx/uvx downloads delay listening by minutes');
});

test('the runtime user is numeric and not root', () => {
  const users = final.instructions.filter((i) => i.keyword === 'USER');
  const user = users.at(-1)?.args;
  // Numeric so that Kubernetes can verify runAsNonRoot from the image alone.
  assert.match(user ?? '', /^\d+(:\d+)?$/);
  assert.is.not(Number(user!.split(':')[0]), 0);
});

test('the final stage carries no build tools: only node_modules, dist/src, uv and Debian runtime packages', () => {
  const stageNamed = (name: string) => dockerfile.stages.find((s) => s.name === name);
  const allowed: Record<string, string[]> = {
    uv: ['/uv', '/uvx'],
    deps: ['/app/node_modules'],
    build: ['/app/dist/src'],
  };
  for (const copy of copiesOf(final)) {
    if (copy.from === undefined) {
      // From the build context: metadata and the schema read at run time, never sources or configs.
      for (const source of copy.sources) assert.ok(['package.json', 'schema'].includes(source), source);
    } else {
      assert.ok(copy.from in allowed, `COPY --from=${copy.from}`);
      for (const source of copy.sources) assert.ok(allowed[copy.from]!.includes(source), source);
    }
  }
  // The node_modules copied in come from a production-only install.
  const deps = stageNamed('deps');
  assert.ok(deps, 'a deps stage');
  assert.ok(
    runs(deps!).some((r) => /\bnpm ci\b/.test(r) && /--omit=dev\b/.test(r)),
    'deps runs npm ci --omit=dev',
  );
  // Nothing is installed or compiled in the final stage itself.
  for (const r of runs(final)) assert.not.match(r, /\bnpm (ci|install|i|run)\b|\btsc\b|\bpip\b|curl|wget/);
  const packages = aptPackages(final).sort();
  assert.equal(packages, ['ca-certificates', 'git', 'python3', 'tini']);
  assert.ok(
    runs(final).some((r) => /--no-install-recommends/.test(r) && /rm -rf \/var\/lib\/apt\/lists/.test(r)),
  );
});

test('build, deps and runtime share one Node LTS base, new enough for engines.node', () => {
  const bases = dockerfile.stages.filter((s) => s.name !== 'uv').map((s) => s.from);
  assert.is(new Set(bases).size, 1, `one base for every Node stage: ${bases.join(', ')}`);
  const match = /^node:(\d+)-[a-z]+-slim$/.exec(bases[0]!);
  assert.ok(match, `a slim node image with its Debian release named: ${bases[0]}`);
  const major = Number(match![1]);
  assert.is(major % 2, 0, 'even majors are the LTS lines');
  const engines = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')).engines.node as string;
  assert.ok(major >= Number(/(\d+)/.exec(engines)![1]), `${major} satisfies ${engines}`);
  assert.ok(major >= 22, 'Node 20 is past its end of life');
});

test('uv comes from a version-pinned image, not from an installer piped into a shell', () => {
  const uv = dockerfile.stages.find((s) => s.name === 'uv');
  assert.match(uv?.from ?? '', /^ghcr\.io\/astral-sh\/uv:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$/);
  for (const stage of dockerfile.stages) {
    for (const r of runs(stage)) assert.not.match(r, /\|\s*(ba)?sh\b/);
  }
});

test('manifest path, address, port and caches: the defaults both modes and Kubernetes rely on', () => {
  assert.is(imageEnv.MCP_PROXY_CONFIG, '/etc/mcp-proxy/mcp-proxy.yaml');
  assert.is(imageEnv.HOST, '0.0.0.0');
  assert.is(imageEnv.MCP_COMMAND, undefined, 'single-server mode is chosen by whoever runs the image');
  assert.is(imageEnv.MCP_PROXY_URL, undefined);
  // With a read-only root file system, /cache is the only writable place besides /tmp. These variables
  // must be in the base environment of children, or npx and uvx would fall back to an unwritable HOME.
  for (const name of ['HOME', 'npm_config_cache', 'UV_CACHE_DIR']) {
    assert.match(imageEnv[name] ?? '', /^\/cache(\/|$)/, name);
    assert.ok((BASE_ENVIRONMENT as readonly string[]).includes(name), `${name} reaches children`);
  }
  assert.ok(
    runs(final).some((r) => /mkdir -p .*\/etc\/mcp-proxy/.test(r) && /chown 1000:1000 \/cache/.test(r)),
  );
});

test('.dockerignore lets in what the Dockerfile copies from the context, and nothing of the host build', () => {
  const lines = readFileSync(fromRoot('.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.is(lines[0], '*', 'an allow-list: everything is excluded first');
  const allowed = new Set(lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1)));
  for (const stage of dockerfile.stages) {
    for (const copy of copiesOf(stage).filter((c) => c.from === undefined)) {
      for (const source of copy.sources) {
        assert.ok(existsSync(fromRoot(source)), `${source} exists`);
        assert.ok(allowed.has(source.split('/')[0]!), `${source} is in the build context`);
      }
    }
  }
  for (const kept of ['node_modules', 'dist', '.git', 'test', '.env']) assert.not.ok(allowed.has(kept), kept);
  for (const nested of ['**/node_modules', '**/dist']) assert.ok(lines.includes(nested), nested);
});

// ---------------------------------------------------------------------------------------------------
// A small Dockerfile reader: enough for this repository's Dockerfile (default escape character).

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { stages: Stage[] } {
  const logical: string[] = [];
  let pending: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    // Comment lines are dropped even inside a continued instruction, as the builder does.
    if (/^\s*#/.test(line) || (pending === undefined && line.trim() === '')) continue;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    pending = pending === undefined ? part : `${pending} ${part.trim()}`;
    if (!continued) {
      logical.push(pending.trim());
      pending = undefined;
    }
  }
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, word, rest = ''] = /^(\S+)\s*(.*)$/s.exec(line)!;
    const keyword = word!.toUpperCase();
    if (keyword === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const from = image!.replace(/\$\{(\w+)\}/g, (_, v: string) => globalArgs[v] ?? '');
      stages.push({ from, ...(name !== undefined && { name }), instructions: [] });
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [, name, value = ''] = /^(\w+)(?:=(.*))?$/.exec(rest)!;
        globalArgs[name!] = value;
      }
    } else {
      stages.at(-1)!.instructions.push({ keyword, args: rest });
    }
  }
  return { stages };
}

/** A diagnostic's message: LSP allows markup, dockerfile-utils sends plain text. */
function text(message: string | { value: string }): string {
  return typeof message === 'string' ? message : message.value;
}

function only(stage: Stage, keyword: string): string {
  const found = stage.instructions.filter((i) => i.keyword === keyword);
  assert.is(found.length, 1, `one ${keyword} in the stage`);
  return found[0]!.args;
}

function execForm(args: string): string[] {
  const value: unknown = JSON.parse(args);
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === 'string'), `exec form: ${args}`);
  return value as string[];
}

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const m of i.args.matchAll(/([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
      env[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
    }
  }
  return env;
}

function runs(stage: Stage): string[] {
  return stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
}

function copiesOf(stage: Stage): { from?: string; sources: string[] }[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { ...(from !== undefined && { from }), sources: paths.slice(0, -1) };
    });
}

function aptPackages(stage: Stage): string[] {
  return runs(stage).flatMap((r) =>
    [...r.matchAll(/apt-get install ((?:-\S+\s+)*)([^&;|]+)/g)].flatMap((m) => m[2]!.trim().split(/\s+/)),
  );
}

/** ENTRYPOINT + CMD after tini, with the image's paths mapped onto this checkout and `node` onto this Node. */
function imageCommand(): string[] {
  const entrypoint = execForm(only(final, 'ENTRYPOINT'));
  const afterTini = entrypoint.slice(entrypoint.indexOf('--') + 1);
  const command = [...afterTini, ...execForm(only(final, 'CMD'))].map((word) => {
    if (word === 'node') return process.execPath;
    if (word.startsWith('/app/')) return fromRoot(word.slice('/app/'.length));
    return word;
  });
  assert.is(
    command[cliNodeFlags().length + 1],
    cliPath,
    'the image runs the CLI that `npm run build` produces',
  );
  assert.ok(existsSync(cliPath));
  return command;
}

/** The HEALTHCHECK's command, as written, or runnable here (`node` mapped onto this Node). */
function healthcheckCommand(asWritten = false): string[] {
  const args = only(final, 'HEALTHCHECK');
  const exec = /\bCMD\s+(\[.*\])\s*$/.exec(args);
  assert.ok(exec, `HEALTHCHECK CMD in exec form: ${args}`);
  const command = execForm(exec![1]!);
  return asWritten ? command : command.map((w) => (w === 'node' ? process.execPath : w));
}

/** The image's ENV, with its absolute directories moved into a fresh temp dir (nothing there exists). */
function imageEnvironment(): { env: Record<string, string>; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'mcp-proxy-image-'));
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [name, value] of Object.entries(imageEnv)) {
    env[name] = /^\/(etc|cache)\b/.test(value) ? join(root, value) : value;
  }
  return { env, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

function run(
  command: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command[0]!,
      command.slice(1),
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

test.run();
