/**
 * Splits a command line into words the way a POSIX shell (and Python's shlex.split) does, without
 * running anything: single quotes are literal, double quotes allow \" \\ \$ \` escapes, a backslash
 * outside quotes escapes the next character. No expansion, globbing or operators: `|` and `;` are plain
 * characters, because the words are passed to a program directly and never through a shell.
 */
export function splitShellWords(line: string): { words: string[] } | { error: string } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i += 1;
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      if (close === -1) return { error: `unbalanced single quote at character ${i + 1}` };
      word += line.slice(i + 1, close);
      inWord = true;
      i = close + 1;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`\n'.includes(line[j + 1]!)) {
          if (line[j + 1] !== '\n') word += line[j + 1];
          j += 1;
        } else {
          word += line[j];
        }
      }
      if (j >= line.length) return { error: `unbalanced double quote at character ${i + 1}` };
      inWord = true;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= line.length) return { error: 'a trailing backslash escapes nothing' };
      // Backslash-newline is a line continuation: it joins, it adds nothing.
      if (line[i + 1] !== '\n') {
        word += line[i + 1];
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i += 1;
    }
  }
  if (inWord) words.push(word);
  return { words };
}
