/**
 * Parses JSON as VS Code writes it (JSONC): `//` and `/* *\/` comments and trailing commas are allowed,
 * because `.vscode/mcp.json` is edited by hand and often carries both. Plain JSON (Claude Desktop, gateway
 * payloads) parses the same. Comments and trailing commas are blanked rather than removed, so the
 * position in JSON.parse's error is still the position in the file.
 */
export function parseJsonc(text: string): { value: unknown } | { error: string } {
  // A byte-order mark is not JSON, but editors on Windows write one.
  const blanked = blankCommentsAndTrailingCommas(text.replace(/^\uFEFF/, ' '));
  try {
    return { value: JSON.parse(blanked) };
  } catch (error) {
    // V8 quotes the text around a bad token: not worth repeating, and it could be a secret.
    const message = (error as Error).message.replace(/, ".*" is not valid JSON$/s, '');
    const position = /at position (\d+)/.exec(message);
    if (!position) return { error: `not JSON: ${message}` };
    const offset = Number(position[1]);
    const before = text.slice(0, offset).split('\n');
    const where = `line ${before.length}, column ${before.at(-1)!.length + 1}`;
    return { error: `not JSON at ${where}: ${message.replace(/ in JSON at position \d+.*$/, '')}` };
  }
}

function blankCommentsAndTrailingCommas(text: string): string {
  const out = text.split('');
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      i = endOfString(text, i);
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      // An unclosed comment is left for JSON.parse to report where it starts.
      if (end === -1) return out.join('');
      blank(i, end + 2);
      i = end + 2;
    } else if (c === ',' && /[}\]]/.test(text[skipGap(text, i + 1)] ?? '')) {
      out[i] = ' ';
      i += 1;
    } else {
      i += 1;
    }
  }
  return out.join('');
}

/** Index just past the string literal that opens at `start`. */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i + 1;
}

/** Index of the next character after `from` that is neither white space nor part of a comment. */
function skipGap(text: string, from: number): number {
  let i = from;
  for (;;) {
    if (/\s/.test(text[i] ?? '')) {
      i += 1;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end;
    } else if (text.startsWith('/*', i) && text.indexOf('*/', i + 2) !== -1) {
      i = text.indexOf('*/', i + 2) + 2;
    } else {
      return i;
    }
  }
}
