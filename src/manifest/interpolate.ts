import { quoted, type PathSegment } from './diagnostics.js';
import { error, type Problem } from './problem.js';

export type Environment = Readonly<Record<string, string | undefined>>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of `value` with the proxy's environment;
 * `$${` stands for a literal `${`. A default applies when the variable is unset or empty, as in POSIX sh.
 * Pure: returns a new value, never mutates the input. Messages name variables and paths, never values,
 * since the environment carries secrets.
 */
export function interpolate(value: unknown, env: Environment): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const walk = (v: unknown, path: PathSegment[]): unknown => {
    if (typeof v === 'string') return interpolateString(v, env, path, problems);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, []), problems };
}

function interpolateString(text: string, env: Environment, path: PathSegment[], problems: Problem[]): string {
  if (!text.includes('$')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i += 1;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close === -1) {
      problems.push(error(path, 'unterminated "${": close it with "}", or write "$${" for a literal "${"'));
      return text;
    }
    const expression = text.slice(i + 2, close);
    const separator = expression.indexOf(':-');
    const name = separator === -1 ? expression : expression.slice(0, separator);
    if (!NAME.test(name)) {
      problems.push(
        error(
          path,
          `${quoted(`\${${name}}`)} is not a variable reference: names are letters, digits and "_"`,
        ),
      );
      return text;
    }
    const current = env[name];
    if (current !== undefined && (separator === -1 || current !== '')) {
      out += current;
    } else if (separator !== -1) {
      out += expression.slice(separator + 2);
    } else {
      problems.push(
        error(
          path,
          `environment variable ${name} is not set; set it, or give a default with \${${name}:-default}`,
        ),
      );
      return text;
    }
    i = close + 1;
  }
  return out;
}
