import type { ServerSpec } from '../manifest/types.js';

/**
 * What a reload does to one server:
 * - `add`: start it; `remove`: stop serving it (its sessions drain);
 * - `restart`: start the new version beside the old, move new sessions to it, drain the old;
 * - `update`: change settings of the running version in place; `keep`: nothing changed.
 */
export type ReloadAction = 'add' | 'remove' | 'restart' | 'update' | 'keep';

export interface PlanStep {
  name: string;
  action: ReloadAction;
  /** The new spec (absent for `remove`). */
  spec?: ServerSpec;
  /**
   * The fields that differ, for logs and /servers: why a server was restarted or updated. `failed` (no
   * field of a spec) when the version running had failed and is started again.
   */
  changed: string[];
}

/** What `changed` says of a server restarted because it had failed, whatever else changed. */
export const FAILED = 'failed';

/** Fields that shape the running upstream: a change means a new process or a new connection. */
const RESTART_FIELDS = [
  'kind',
  'command',
  'args',
  'env',
  'cwd',
  'url',
  'headers',
  'useWorkloadIdentity',
  'scope',
  'isolation',
] as const;

/**
 * Compares two manifests' servers and says what to do with each. Pure: the same two lists always give
 * the same plan, in the new manifest's order, removed servers last. A disabled server counts as absent.
 * A server named in `failed` (it could not start, or crashed too often in a row, and supervision gave up)
 * is started again even if unchanged: a reload is how its operator says "try again" once its cause is
 * fixed outside the manifest, and it serves no one, so nothing is disturbed.
 */
export function planReload(
  current: readonly ServerSpec[],
  next: readonly ServerSpec[],
  failed: ReadonlySet<string> = new Set(),
): PlanStep[] {
  const running = new Map(current.filter((s) => !s.disabled).map((s) => [s.name, s]));
  const steps: PlanStep[] = [];
  const seen = new Set<string>();
  for (const spec of next) {
    seen.add(spec.name);
    const old = running.get(spec.name);
    if (spec.disabled) {
      if (old) steps.push({ name: spec.name, action: 'remove', changed: ['disabled'] });
      continue;
    }
    if (!old) {
      steps.push({ name: spec.name, action: 'add', spec, changed: [] });
      continue;
    }
    const changed = differingFields(old, spec);
    if (failed.has(spec.name)) changed.push(FAILED);
    const restart =
      failed.has(spec.name) || changed.some((f) => (RESTART_FIELDS as readonly string[]).includes(f));
    const action = restart ? 'restart' : changed.length > 0 ? 'update' : 'keep';
    steps.push({ name: spec.name, action, spec, changed });
  }
  for (const name of running.keys()) {
    if (!seen.has(name)) steps.push({ name, action: 'remove', changed: [] });
  }
  return steps;
}

function differingFields(a: ServerSpec, b: ServerSpec): string[] {
  const fields = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...fields].filter((f) => canonical((a as never)[f]) !== canonical((b as never)[f])).sort();
}

/** JSON with object keys sorted: `env` and `headers` are equal whatever order they were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}
