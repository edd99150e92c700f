import { manifestSchema } from '../manifest/schema.js';
import { isObject, type Candidate, type Conversion } from './types.js';

/** The fields of an adapter payload the manifest accepts, from the schema so the two cannot drift apart. */
const ADAPTER_FIELDS = Object.keys(
  (manifestSchema.$defs as Record<string, { properties: object }>).adapter!.properties,
);

export const isAdapterPayload = (value: unknown): value is Record<string, unknown> =>
  isObject(value) && isObject(value.environmentVariables);

/**
 * Azure mcp-gateway adapter payloads (the body of `POST /adapters`, one or a list), kept as they are under
 * `adapters:`, which takes them unchanged. Fields the gateway adds to what it returns (`id`, `createdAt`…)
 * are not part of a payload and are dropped.
 */
export function fromAdapterPayloads(payloads: unknown[]): Conversion {
  const candidates: Candidate[] = [];
  const notes: string[] = [];
  payloads.forEach((payload, index) => {
    if (!isAdapterPayload(payload)) {
      notes.push(`item [${index}] skipped: not an adapter payload (it needs environmentVariables)`);
    } else if (typeof payload.name !== 'string') {
      notes.push(`item [${index}] skipped: an adapter payload with no name`);
    } else {
      const extra = Object.keys(payload).filter((f) => !ADAPTER_FIELDS.includes(f));
      const value = Object.fromEntries(Object.entries(payload).filter(([f]) => !extra.includes(f)));
      const messages = extra.length
        ? [`ignored ${extra.map((f) => `"${f}"`).join(', ')}: not part of an adapter payload`]
        : [];
      candidates.push({ section: 'adapters', name: payload.name, value, messages });
    }
  });
  return { candidates, notes };
}
