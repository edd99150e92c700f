import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/**
 * Why a command could not be started, found without starting it: its working directory is missing, or
 * the command is not an executable file (on PATH when it has no slash). Undefined when it looks runnable.
 * Used where no process is started yet (lazy servers, per-session servers) but a reload must still tell a
 * broken new version from a working one.
 */
export function whyNotRunnable(command: string, cwd: string, path: string | undefined): string | undefined {
  if (!isDirectory(cwd)) return `working directory ${cwd} does not exist`;
  if (command.includes('/')) {
    const file = isAbsolute(command) ? command : resolve(cwd, command);
    return isExecutable(file) ? undefined : `command ${command} does not exist or is not executable`;
  }
  const dirs = (path ?? '').split(delimiter).filter(Boolean);
  if (dirs.some((dir) => isExecutable(join(isAbsolute(dir) ? dir : resolve(cwd, dir), command))))
    return undefined;
  return `command "${command}" not found on PATH (${path ?? 'PATH not set'})`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
