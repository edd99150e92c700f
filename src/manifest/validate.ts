import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { pathStartsWith, quoted, type PathSegment } from './diagnostics.js';
import { error, type Problem } from './problem.js';
import { manifestSchema } from './schema.js';
import { suggest } from './suggest.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const ajv = new Ajv2020({
  allErrors: true, // every problem at once, not the first
  verbose: true, // errors carry their parent schema, which lists the keys that would have been valid
  strict: true,
  strictRequired: false, // oneOf branches require keys that the enclosing object defines
  allowUnionTypes: true, // durations are a number or a string; env values a string, number or boolean
  // Interpolation yields strings, so `port: ${PORT}` must still read as a number; this also lets
  // `env: { DEBUG: 1 }` mean the string "1", as in docker-compose.
  coerceTypes: true,
});
addFormats(ajv, ['uri']);
const validateManifest = ajv.compile(manifestSchema);

/** Shared definitions, recognised by identity in errors (ajv's `parentSchema`) to phrase messages for them. */
const DEFS = manifestSchema.$defs as Record<string, unknown>;

/**
 * Checks a manifest value (after interpolation) against the JSON Schema. Coerces scalar types in place
 * (see `coerceTypes`), so pass a value you own. Returns problems a person can act on: ajv's errors are
 * rewritten to name the key, suggest the likely one for a typo, and say what a server needs.
 */
export function validateAgainstSchema(value: unknown): Problem[] {
  const empty = unsetNoValues(value, []);
  const schemaProblems = validateManifest(value) ? [] : describeErrors(validateManifest.errors ?? []);
  // A key that is itself wrong (unknown, or not a valid name) is the one thing to say of it; anything
  // else said at or under a value that is missing only restates that it is missing.
  const keyIsWrong = (path: PathSegment[]) =>
    schemaProblems.some((p) => p.atKey && p.path.length === path.length && pathStartsWith(p.path, path));
  return [
    ...empty
      .filter((path) => !keyIsWrong(path))
      .map((path) => error(path, noValueMessage(path), typeof path.at(-1) === 'string')),
    ...schemaProblems.filter((p) => p.atKey || !empty.some((path) => pathStartsWith(p.path, path))),
  ];
}

/** Where text is expected, `KEY:` may have been meant as empty text. */
const TEXT_CONTAINERS = new Set(['args', 'env', 'headers', 'environmentVariables']);

function noValueMessage(path: PathSegment[]): string {
  const parent = path.at(-2);
  const text = typeof parent === 'string' && TEXT_CONTAINERS.has(parent) ? " (write '' for empty text)" : '';
  return `has no value${text}: give it one, or remove it`;
}

/**
 * Where the manifest holds null: a key with nothing after its colon, `~` or `null`. No field takes null
 * (the schema names no null type), and the coercion meant for text from `${VAR}` would read it as 0, ""
 * or false: a timeout of 0, a random port, an empty argument. Map members holding null are set to
 * undefined, which ajv checks as absent (so `url:` does not make a server remote) while its unknown-key
 * and name checks still see the key.
 */
function unsetNoValues(value: unknown, path: PathSegment[]): PathSegment[][] {
  if (value === null) return [path];
  if (Array.isArray(value)) return value.flatMap((item, i) => unsetNoValues(item, [...path, i]));
  if (typeof value !== 'object') return [];
  const members = value as Record<string, unknown>;
  return Object.keys(members).flatMap((key) => {
    if (members[key] !== null) return unsetNoValues(members[key], [...path, key]);
    members[key] = undefined;
    return [[...path, key]];
  });
}

function describeErrors(errors: ErrorObject[]): Problem[] {
  // Errors inside a oneOf's branches restate the oneOf; the rewritten oneOf message says it better.
  const oneOfPaths = errors.filter((e) => e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (oneOfPaths.some((p) => e.schemaPath.startsWith(p))) continue;
    const problem = describe(e);
    if (!problem) continue;
    const key = `${problem.path.join('\0')}\0${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

function pathOf(e: ErrorObject): PathSegment[] {
  if (!e.instancePath) return [];
  return e.instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const KIND_HINT: Record<string, string> = {
  command: 'it applies only to remote servers (with `url`)',
  url: 'it applies only to stdio servers (with `command`)',
  MCP_PROXY_URL: 'it applies only with MCP_COMMAND',
};

function describe(e: ErrorObject): Problem | undefined {
  const path = pathOf(e);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const guess = suggest(key, known);
      const hint = guess
        ? `; did you mean "${guess}"?`
        : known.length
          ? `; known keys: ${known.join(', ')}`
          : '';
      return error([...path, key], `unknown key ${quoted(key)}${hint}`, true);
    }
    case 'required':
      return error(path, `missing required key "${String(e.params.missingProperty)}"`);
    case 'oneOf':
      return describeOneOf(e, path);
    case 'false schema': {
      // dependentSchemas/<present key>/properties/<forbidden key>: a key that does not fit the server's kind.
      const match = /dependentSchemas\/([^/]+)\/properties\/([^/]+)\//.exec(e.schemaPath);
      if (!match) return error(path, 'is not allowed here');
      const [, present, forbidden] = match as unknown as [string, string, string];
      return error(
        path,
        `"${forbidden}" cannot be used with "${present}": ${KIND_HINT[present] ?? 'remove one'}`,
        true,
      );
    }
    case 'propertyNames':
      return undefined; // its inner error (the name's pattern) is the one that explains
    case 'pattern':
    case 'format':
      return describePatternOrFormat(e, path);
    case 'type': {
      if (path.length === 0) return error(path, 'the manifest must be a map of keys such as `servers:`');
      if (e.parentSchema === DEFS.duration) return error(path, DURATION_MESSAGE);
      const types = ([] as string[]).concat(e.params.type as string | string[]);
      return error(
        path,
        `must be ${types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types.at(-1)}` : types[0]}`,
      );
    }
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[]).map(String);
      const guess = typeof e.data === 'string' ? suggest(e.data, allowed) : undefined;
      return error(path, `must be one of ${allowed.join(', ')}${guess ? `; did you mean "${guess}"?` : ''}`);
    }
    case 'minLength':
      return error(path, e.params.limit === 1 ? 'must not be empty' : (e.message ?? 'is too short'));
    default:
      return error(path, e.message ?? `fails ${e.keyword}`);
  }
}

const DURATION_MESSAGE =
  'must be a duration: a number of milliseconds, or a string such as 250ms, 30s, 5m or 1h';

function describePatternOrFormat(e: ErrorObject, path: PathSegment[]): Problem {
  if (e.propertyName !== undefined) {
    return error(
      [...path, e.propertyName],
      `${quoted(e.propertyName)} is not a valid name: use a lowercase DNS label (a-z, 0-9 and "-", ` +
        '1 to 63 characters, starting and ending with a letter or digit)',
      true,
    );
  }
  if (e.parentSchema === DEFS.duration) return error(path, DURATION_MESSAGE);
  if (e.parentSchema === DEFS.name) {
    return error(
      path,
      'must be a lowercase DNS label (a-z, 0-9 and "-", 1 to 63 characters, starting and ending with a letter or digit)',
    );
  }
  if (path[0] === 'allowedOrigins') {
    return error(path, 'must be an origin: http:// or https://, a host and an optional port, no path');
  }
  if (path[0] === 'allowedHosts') return error(path, 'must be a host name or IP address, without a port');
  const last = path.at(-1);
  if (last === 'scope')
    return error(path, 'must be one scope, without spaces, such as api://<app-id>/.default');
  if (last === 'url' || last === 'MCP_PROXY_URL')
    return error(path, 'must be an absolute http:// or https:// URL');
  return error(path, e.message ?? 'has the wrong form');
}

function describeOneOf(e: ErrorObject, path: PathSegment[]): Problem {
  const both = Array.isArray(e.params.passingSchemas);
  if (path[0] === 'adapters') {
    return error(
      path,
      both
        ? 'has both MCP_COMMAND and MCP_PROXY_URL: an adapter runs a command or forwards to a URL, not both'
        : 'needs MCP_COMMAND (a stdio server, with MCP_ARGS) or MCP_PROXY_URL (a remote server)',
    );
  }
  return error(
    path,
    both
      ? 'has both `command` and `url`: a server is a stdio command or a remote URL, not both'
      : 'needs `command` (a stdio server) or `url` (a remote Streamable HTTP server)',
  );
}
