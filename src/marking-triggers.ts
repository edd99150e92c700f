import { setFlagsFromString } from 'node:v8';

/**
 * When V8 starts marking the old generation for a full collection: once the heap has filled 80% of the room
 * it was given at the last one (by a task), 90% (at once). Left to itself, Node 24's V8 starts much earlier
 * under large messages: a mark-compact every five to seven 1 MiB calls through a shared child, one in twenty
 * with these settings (Node 20: one in thirteen to fifteen either way). Decision 0031.
 */
const MARKING_TRIGGERS: readonly string[] = [
  '--incremental-marking-soft-trigger=80',
  '--incremental-marking-hard-trigger=90',
];

/**
 * Set once, as the server starts. Not on node's command line with the young-generation cap (0021): these are
 * V8's own flags, not Node's, and a node that no longer knows a flag given on its command line refuses to
 * start, where one given here prints an error and runs on with V8's defaults. V8 reads them each time it
 * decides whether to start marking, so setting them after start is safe (checked on Node 20 and 24).
 */
export function setMarkingTriggers(): void {
  for (const flag of MARKING_TRIGGERS) setFlagsFromString(flag);
}
