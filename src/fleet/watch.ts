import { once } from 'node:events';
import { readlink, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface ManifestWatcher {
  close(): Promise<void>;
}

export interface WatchOptions {
  /**
   * Quiet time after the last event before onChange, so one save is one call. At least 100 ms: chokidar
   * drops a `change` that follows another on the same path within 50 ms (an `unlink`, within 100 ms) and
   * sends nothing later for it, so only waiting that long after the last event we saw makes the caller's
   * read see the change it dropped.
   */
  debounceMs?: number;
  /** Errors once watching is established (a re-watch hitting the inotify limit, say); changes may go unnoticed. */
  onError?: (error: Error) => void;
}

const DEFAULT_DEBOUNCE_MS = 100;
const CHOKIDAR_DEDUPE_MS = 100;
/** As many symlinks as Linux follows before it gives up with ELOOP. */
const MAX_LINKS = 40;

/**
 * Calls onChange (debounced) whenever the manifest at `path` may have changed. The caller re-reads the file
 * and compares it with what it last applied, so a spurious call is harmless but a missed one is a bug.
 * Resolves once watching is established.
 *
 * Each directory on the manifest's way to its file is watched, without descending, for the entries that
 * way goes through: the manifest's name (written in place, renamed over, deleted, recreated), each symlink
 * on the way and the first entry its target names (Kubernetes swaps `..data` to update a mounted
 * ConfigMap), and the file it resolves to (a symlink's target may be edited in another directory). When
 * anything changed, that way is resolved again before onChange, so what the caller reads next is watched.
 */
export async function watchManifest(
  path: string,
  onChange: () => void,
  options: WatchOptions = {},
): Promise<ManifestWatcher> {
  const manifest = resolve(path);
  const quietMs = Math.max(options.debounceMs ?? DEFAULT_DEBOUNCE_MS, CHOKIDAR_DEDUPE_MS);
  let entries = await resolutionEntries(manifest);
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let settling = Promise.resolve();

  const matters = (dir: string, path: string) =>
    path === dir || (dirname(path) === dir && (entries.get(dir)?.has(basename(path)) ?? false));

  const changed = () => {
    if (closed) return;
    clearTimeout(timer);
    // One settle at a time, so an older resolution never replaces a newer one.
    timer = setTimeout(() => (settling = settling.then(settle)), quietMs);
  };

  const settle = async () => {
    try {
      await follow();
    } catch (error) {
      options.onError?.(error as Error);
    }
    // Outside the chain: a throwing onChange is the caller's uncaught exception, and the next change still counts.
    queueMicrotask(() => {
      if (!closed) onChange();
    });
  };

  /** Watches what the manifest resolves through now, so that what the caller reads next is watched. */
  const follow = async () => {
    entries = await resolutionEntries(manifest);
    for (const [dir, watcher] of watchers) {
      if (entries.has(dir)) continue;
      watchers.delete(dir);
      await watcher.close();
    }
    for (const dir of entries.keys()) {
      if (closed) return;
      if (!watchers.has(dir)) watchers.set(dir, await watchDirectory(dir, matters, changed, options.onError));
    }
  };

  try {
    for (const dir of entries.keys()) {
      watchers.set(dir, await watchDirectory(dir, matters, changed, options.onError));
    }
  } catch (error) {
    await Promise.all([...watchers.values()].map((w) => w.close()));
    throw error;
  }

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await settling;
      await Promise.all([...watchers.values()].map((w) => w.close()));
      watchers.clear();
    },
  };
}

/** Resolves once `dir` is watched for the entries that matter; rejects if chokidar reports an error first. */
async function watchDirectory(
  dir: string,
  matters: (dir: string, path: string) => boolean,
  changed: () => void,
  onError: ((error: Error) => void) | undefined,
): Promise<FSWatcher> {
  const watcher = watch(dir, {
    depth: 0,
    // A symlink is watched as an entry: chokidar reports it changed when it resolves elsewhere.
    followSymlinks: false,
    ignoreInitial: true,
    // Our quiet time merges delete-then-create already; chokidar's would only delay the unlink.
    atomic: false,
    // No watch on other entries: a busy directory neither costs inotify watches nor wakes us.
    ignored: (path) => !matters(dir, path),
  });
  let established = false;
  watcher.on('all', (_event, path) => {
    // Before 'ready' chokidar reports symlinks it finds as added, ignoreInitial or not. Afterwards it keeps
    // watching an entry that stopped mattering when the manifest moved on, hence the second test.
    if (established && matters(dir, path)) changed();
  });
  watcher.on('error', (error) => {
    if (established) onError?.(error as Error);
  });
  try {
    await once(watcher, 'ready'); // rejects on an 'error' before it
  } catch (error) {
    await watcher.close();
    throw error;
  }
  established = true;
  return watcher;
}

/**
 * The directories that decide what `manifest` reads, each with the names in it that matter: the manifest's
 * own entry; for each symlink on the way, the first entry its target names in the link's directory (such as
 * `..data` in `..data/mcp-proxy.yaml`) and the entry it leads to; finally the file itself. Directories above
 * the manifest's own are taken as they are.
 */
async function resolutionEntries(manifest: string): Promise<Map<string, Set<string>>> {
  const entries = new Map<string, Set<string>>();
  const add = (dir: string, name: string) => {
    const names = entries.get(dir) ?? new Set<string>();
    entries.set(dir, names.add(name));
  };
  let dir = await realpath(dirname(manifest));
  let name = basename(manifest);
  for (let links = 0; links <= MAX_LINKS; links++) {
    add(dir, name);
    const target = await readlink(join(dir, name)).catch(() => undefined);
    if (target === undefined) break; // the file itself, or nothing there (yet)
    const first = target.split(sep)[0];
    if (!isAbsolute(target) && first !== undefined && first !== '.' && first !== '..') add(dir, first);
    const next = resolve(dir, target);
    const nextDir = await realpath(dirname(next)).catch(() => undefined);
    if (nextDir === undefined) break; // a dangling link: its own entry will change when it is fixed
    dir = nextDir;
    name = basename(next);
  }
  return entries;
}
