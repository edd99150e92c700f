/** A manifest as `import` writes it: only the two sections a client configuration can fill. */
export interface ImportedManifest {
  servers: Record<string, Record<string, unknown>>;
  adapters: Record<string, unknown>[];
}

/** One server found in a client's file, converted but not yet named in the manifest. */
export interface Candidate {
  section: 'servers' | 'adapters';
  /** As the client's file names it. */
  name: string;
  value: Record<string, unknown>;
  /** What changed in the conversion, each phrased to follow the entry's path in the manifest. */
  messages: string[];
}

/** What one file's format yields: its servers, and notes about the file as a whole (skipped entries…). */
export interface Conversion {
  candidates: Candidate[];
  notes: string[];
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);
