#!/usr/bin/env -S node --max-semi-space-size=4
// The node flags above are how the proxy runs everywhere (npm start and the image's ENTRYPOINT repeat them,
// and a test holds them equal): decision 0021 says why the young generation is capped.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { importCommand } from './commands/import.js';
import { serveCommand } from './commands/serve.js';
import { EXIT_USAGE, validateCommand, type OutputFormat } from './commands/validate.js';
import { manifestReference } from './manifest/reference.js';
import { manifestSchema, schemaText } from './manifest/schema.js';
import { suggest } from './manifest/suggest.js';
import { VERSION } from './version.js';

const DEFAULT_MANIFEST = 'mcp-proxy.yaml';

const HELP: Record<string, string> = {
  main: `mcp-proxy ${VERSION}: serve many MCP servers over Streamable HTTP from one YAML manifest.

Usage: mcp-proxy <command> [options]

Commands:
  serve [-c FILE]        serve the manifest's servers (the default command)
  validate [FILE...]     check manifests without starting anything
  schema                 print the manifest's JSON Schema
  import FILE...         print a manifest built from Claude Desktop, VS Code or gateway configurations

Options:
  -h, --help             show help (also after a command)
  -v, --version          show the version`,
  serve: `Usage: mcp-proxy serve [-c FILE] [--host HOST] [--port PORT] [--no-watch]

Serves every server of the manifest at /servers/<name>/mcp.
With no -c and MCP_COMMAND (+ MCP_ARGS) or MCP_PROXY_URL set, serves that one server at /mcp and
/servers/default/mcp, as the Azure mcp-gateway's per-adapter container did.

Options:
  -c, --config FILE      manifest to serve (default: $MCP_PROXY_CONFIG, else ./${DEFAULT_MANIFEST})
      --host HOST        address to bind (default: $HOST, else the manifest's listen.host, else 127.0.0.1)
      --port PORT        port to bind (default: $PORT, else the manifest's listen.port, else 8000)
      --no-watch         do not reload when the manifest file changes (SIGHUP still reloads)

Environment:
  LOG_LEVEL              debug, info (default), warn or error, in any case: which JSON log lines go
                         to stderr

Edits to the manifest apply live: added servers start, removed ones drain, changed ones restart
beside the old version, untouched ones are not disturbed; a file that does not load changes nothing.
A changed listen (host, port) applies only at the next start.`,
  validate: `Usage: mcp-proxy validate [FILE...] [--format text|json|github]

Checks manifests (default: $MCP_PROXY_CONFIG, else ./${DEFAULT_MANIFEST}) exactly as serve would load
them, starting nothing. A FILE of - is standard input.
Exit status: 0 valid, 1 invalid, 2 unreadable file or bad usage.

Options:
  -f, --format FORMAT    text (default), json, or github (workflow annotations for GitHub Actions)`,
  schema: `Usage: mcp-proxy schema [--markdown]

Prints the manifest's JSON Schema (draft 2020-12), for editors and other validators.

Options:
      --markdown         print the field reference (docs/manifest.md) made from the schema instead`,
  import: `Usage: mcp-proxy import FILE... [--format yaml|json]

Prints one manifest built from existing client configurations, each recognised by its content:
Claude Desktop's claude_desktop_config.json (mcpServers), VS Code's .vscode/mcp.json (servers, inputs),
and Azure mcp-gateway adapter payloads (one, or a list), which are kept under adapters: as they are.
The manifest goes to stdout, checked with the same loader as validate; notes on what changed (renamed
servers, \${input:…} prompts to set as variables, literal secrets, skipped entries) go to stderr.
Exit status: 0 printed, 1 nothing importable or a file that is not a configuration, 2 unreadable file
or bad usage.

  mcp-proxy import ~/.config/Claude/claude_desktop_config.json .vscode/mcp.json > mcp-proxy.yaml

Options:
  -f, --format FORMAT    yaml (default) or json`,
};

const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} satisfies ParseArgsConfig['options'];

const COMMANDS = ['serve', 'validate', 'schema', 'import'] as const;
type Command = (typeof COMMANDS)[number];

/** Commands people try for what are flags here. */
const FLAG_WORDS = new Map([
  ['help', '--help'],
  ['version', '--version'],
]);

async function main(given: string[]): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const argv = commandFirst(given);
  const first = argv[0];
  const command: Command | undefined =
    first === undefined || first.startsWith('-') ? 'serve' : isCommand(first) ? first : undefined;
  if (!command) return usageError(`unknown command "${first}"${commandHint(first!)}`, 'main');
  const rest = first !== undefined && !first.startsWith('-') ? argv.slice(1) : argv;

  const options = {
    ...COMMON_OPTIONS,
    ...(command === 'serve' && {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string' },
      'no-watch': { type: 'boolean' },
    }),
    ...(command === 'validate' && { format: { type: 'string', short: 'f', default: 'text' } }),
    ...(command === 'import' && { format: { type: 'string', short: 'f', default: 'yaml' } }),
    ...(command === 'schema' && { markdown: { type: 'boolean' } }),
  } satisfies ParseArgsConfig['options'];

  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options,
      // serve takes none, but says what a FILE after it was probably meant as.
      allowPositionals: command !== 'schema',
      strict: true,
    });
  } catch (error) {
    return usageError(
      (error as Error).message,
      first === undefined || first.startsWith('-') ? 'main' : command,
    );
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.version) {
    out(VERSION);
    return 0;
  }
  if (values.help) {
    out(HELP[first === undefined || first.startsWith('-') ? 'main' : command]!);
    return 0;
  }

  switch (command) {
    case 'schema':
      process.stdout.write(values.markdown ? manifestReference(manifestSchema) : schemaText);
      return 0;
    case 'validate': {
      const format = values.format as string;
      if (!['text', 'json', 'github'].includes(format)) {
        return usageError(`--format must be text, json or github, not "${format}"`, 'validate');
      }
      const files = parsed.positionals.length ? parsed.positionals : [defaultManifest()];
      return validateCommand(files, format as OutputFormat, process.env, out);
    }
    case 'import': {
      const format = values.format as string;
      if (format !== 'yaml' && format !== 'json') {
        return usageError(`--format must be yaml or json, not "${format}"`, 'import');
      }
      if (!parsed.positionals.length) return usageError('import needs at least one FILE', 'import');
      return importCommand(parsed.positionals, format, {
        out: (text) => process.stdout.write(text),
        err: (line) => process.stderr.write(`${line}\n`),
      });
    }
    case 'serve':
      if (parsed.positionals.length) {
        const [file] = parsed.positionals;
        return usageError(`unexpected argument "${file}"; did you mean -c ${file}?`, 'serve');
      }
      return serveCommand({
        config: values.config as string | undefined,
        host: values.host as string | undefined,
        port: values.port as string | undefined,
        watch: values['no-watch'] !== true,
        env: process.env,
        defaultManifest: defaultManifest(),
      });
  }
}

/**
 * The manifest when none is named: the same one for `serve` and `validate`, so a check is of what serve
 * loads. Set empty, MCP_PROXY_CONFIG counts as unset, as HOST and PORT do.
 */
function defaultManifest(): string {
  return process.env.MCP_PROXY_CONFIG || DEFAULT_MANIFEST;
}

function isCommand(word: string): word is Command {
  return (COMMANDS as readonly string[]).includes(word);
}

/**
 * `mcp-proxy -h serve` asks for serve's help as `mcp-proxy serve -h` does: -h and -v written before a
 * command move after it.
 */
function commandFirst(argv: string[]): string[] {
  const at = argv.findIndex((word) => !word.startsWith('-'));
  const before = argv.slice(0, at);
  if (at <= 0 || !isCommand(argv[at]!) || !before.every((word) => FLAGS_BEFORE_COMMAND.has(word)))
    return argv;
  return [argv[at]!, ...before, ...argv.slice(at + 1)];
}

const FLAGS_BEFORE_COMMAND = new Set(['-h', '--help', '-v', '--version']);

/** `; did you mean --help?` for `mcp-proxy help`, `; did you mean "validate"?` for a typo, else nothing. */
function commandHint(word: string): string {
  const flag = FLAG_WORDS.get(word.toLowerCase());
  if (flag) return `; did you mean ${flag}?`;
  const command = suggest(word, COMMANDS);
  return command ? `; did you mean "${command}"?` : '';
}

function usageError(message: string, topic: string): number {
  process.stderr.write(`mcp-proxy: ${message}\n\n${HELP[topic]}\n`);
  return EXIT_USAGE;
}

// A reader that stops early (`mcp-proxy validate | head`) is not an error worth a stack trace. Output that
// cannot be written (a full disk) is one line, and the status of "could not check": not 1, "invalid".
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  process.stderr.write(`mcp-proxy: cannot write output: ${error.message}\n`);
  process.exit(EXIT_USAGE);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`mcp-proxy: internal error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 70; // EX_SOFTWARE: a bug in mcp-proxy, not in its input
  },
);
