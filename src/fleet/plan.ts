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
   * The fields that differ, for logs and /servers: why a server was restarted or updated. Then `failed`
   * or `stopped` (no field of a spec) when the version running serves no one and is started again.
   */
  changed: string[];
}

/** Why a server's running version serves no one: supervision gave up, or its restart policy let it stop. */
export type Down = 'failed' | 'stopped';

/** What `changed` ends with when a server is started again because it served no one. */
export const DOWN: readonly string[] = ['failed', 'stopped'] satisfies Down[];

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
 * A server that is `down` serves no one, so starting it again disturbs nothing (decision 0034): one that
 * `failed` (it could not start, or crashed too often in a row) is started again even if unchanged, since a
 * reload is how its operator says "try again" once its cause is fixed outside the manifest; one its restart
 * policy let stop is started again once its entry changes (a policy that now says to restart it, say).
 */
export function planReload(
  current: readonly ServerSpec[],
  next: readonly ServerSpec[],
  down: ReadonlyMap<string, Down> = new Map(),
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
    const why = down.get(spec.name);
    const again = why === 'failed' || (why === 'stopped' && changed.length > 0);
    if (again) changed.push(why);
    const restart = again || changed.some((f) => shapesUpstream(f, old, spec));
    const action = restart ? 'restart' : changed.length > 0 ? 'update' : 'keep';
    steps.push({ name: spec.name, action, spec, changed });
  }
  for (const name of running.keys()) {
    if (!seen.has(name)) steps.push({ name, action: 'remove', changed: [] });
  }
  return steps;
}

/** Whether a change of `field` needs a new process or connection. A scope is used only with the identity. */
function shapesUpstream(field: string, a: ServerSpec, b: ServerSpec): boolean {
  if (field === 'scope') return usesIdentity(a) || usesIdentity(b);
  return (RESTART_FIELDS as readonly string[]).includes(field);
}

const usesIdentity = (spec: ServerSpec): boolean => spec.kind === 'remote' && spec.useWorkloadIdentity;

function differingFields(a: ServerSpec, b: ServerSpec): string[] {
  const fields = new Set([...Object.keys(a), ...Object.keys(b)]);
  const value = (spec: ServerSpec, field: string): unknown => {
    const v = (spec as never)[field] as unknown;
    // Header names are not case-sensitive: Authorization written as authorization is the same header.
    return field === 'headers' && v ? lowercaseKeys(v as Record<string, string>) : v;
  };
  return [...fields].filter((f) => canonical(value(a, f)) !== canonical(value(b, f))).sort();
}

const lowercaseKeys = (record: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(record).map(([k, v]) => [k.toLowerCase(), v]));

/** JSON with object keys sorted: `env` and `headers` are equal whatever order they were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}
