import { watch, type FSWatcher } from 'node:fs';
import { readlink, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';

export interface ManifestWatcher {
  close(): Promise<void>;
}

export interface WatchOptions {
  /** Quiet time after the last event before onChange, so that one save is one call. */
  debounceMs?: number;
  /**
   * A directory on the manifest's way could not be watched (gone, or the inotify limit reached). It is tried
   * again after the next change noticed elsewhere; until then changes through that directory go unnoticed.
   */
  onError?: (error: Error) => void;
}

const DEFAULT_DEBOUNCE_MS = 100;
/** As many symlinks as Linux follows before it gives up with ELOOP. */
const MAX_LINKS = 40;

/**
 * Calls onChange (debounced) whenever the manifest at `path` may have changed. The caller re-reads the file
 * and compares it with what it last applied, so a spurious call is harmless but a missed one is a bug.
 * Resolves once watching is established.
 *
 * Each directory on the manifest's way to its file is watched, without descending, for the entries that
 * way goes through: the manifest's name (written in place, renamed over, deleted, recreated), each symlink
 * and the first entry its target names (Kubernetes swaps `..data` to update a mounted ConfigMap), and the
 * file it resolves to (a symlink's target may be edited in another directory).
 *
 * Plain `fs.watch` on directories, not chokidar: chokidar's de-duplication drops a change that follows
 * another on the same path within 50 ms, and after a quick delete-recreate-delete it can lose track of
 * the file and stay silent through later writes. A directory watch reports every entry it touches, by
 * name, and keeps no state to lose. It needs change notification from the file system (not NFS or SMB):
 * there, SIGHUP reloads.
 */
export async function watchManifest(
  path: string,
  onChange: () => void,
  options: WatchOptions = {},
): Promise<ManifestWatcher> {
  const manifest = resolve(path);
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  let entries = await resolutionEntries(manifest);
  let watchers: FSWatcher[] = [];
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let settling = Promise.resolve();

  const changed = () => {
    if (closed) return;
    clearTimeout(timer);
    // One settle at a time, so an older resolution never replaces a newer one.
    timer = setTimeout(() => (settling = settling.then(settle)), debounceMs);
  };

  const watchDirectory = (dir: string) =>
    watch(dir, (_event, name) => {
      // No name (Node allows that on some platforms), or the directory's own (deleted or moved away): anything
      // may have changed.
      if (name === null || name === basename(dir) || entries.get(dir)?.has(name)) changed();
    }).on('error', (error) => {
      // The watcher is unusable now; the next settle watches the directory anew.
      options.onError?.(error);
      changed();
    });

  /**
   * Watches what the manifest resolves through now, before the caller reads it, so that nothing after that
   * read goes unnoticed. Every directory is watched anew: one deleted and recreated, or whose watcher
   * failed, is watched again; new watchers start before the old ones stop, so there is no gap.
   */
  const follow = async () => {
    entries = await resolutionEntries(manifest);
    const previous = watchers;
    watchers = [];
    for (const dir of entries.keys()) {
      try {
        watchers.push(watchDirectory(dir));
      } catch (error) {
        options.onError?.(error as Error);
      }
    }
    for (const watcher of previous) watcher.close();
  };

  const settle = async () => {
    if (closed) return;
    try {
      await follow();
    } catch (error) {
      // The manifest's directory is gone: keep what is watched and let the caller's read report it.
      options.onError?.(error as Error);
    }
    // Outside the chain, so that an onChange that throws is an uncaught exception like any callback's,
    // not a rejection that would stop the next settle.
    setImmediate(() => {
      if (!closed) onChange();
    });
  };

  try {
    for (const dir of entries.keys()) watchers.push(watchDirectory(dir));
  } catch (error) {
    for (const watcher of watchers) watcher.close();
    throw error;
  }

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await settling;
      for (const watcher of watchers) watcher.close();
    },
  };
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
    if (nextDir === undefined) break; // a dangling link: its own entry changes when it is fixed
    dir = nextDir;
    name = basename(next);
  }
  return entries;
}
