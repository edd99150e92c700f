import type { Manifest, ServerSpec } from '../manifest/types.js';
import type { StdioDeps } from '../upstream/spawn.js';
import type { Upstream, UpstreamStatus } from '../upstream/types.js';
import { createUpstream } from './create-upstream.js';

export interface ServerListing extends UpstreamStatus {
  description?: string;
  disabled: boolean;
}

/**
 * The live upstreams, by name. Requests look a server up here on every call, so that what the fleet
 * holds is what is served: nothing is mounted per server.
 */
export class Fleet {
  private readonly upstreams = new Map<string, Upstream>();
  private specs: ServerSpec[] = [];

  constructor(private readonly deps: StdioDeps) {}

  /** Starts every enabled server of the manifest; resolves when eager ones are ready or have failed. */
  async start(manifest: Manifest): Promise<void> {
    this.specs = manifest.servers;
    for (const spec of manifest.servers) {
      if (!spec.disabled) this.upstreams.set(spec.name, createUpstream(spec, this.deps));
    }
    await Promise.all([...this.upstreams.values()].map((u) => u.start()));
  }

  /** The upstream serving `name`, if one is enabled. */
  get(name: string): Upstream | undefined {
    return this.upstreams.get(name);
  }

  list(): ServerListing[] {
    return this.specs.map((spec) => {
      const upstream = this.upstreams.get(spec.name);
      const status: UpstreamStatus = upstream?.status() ?? {
        name: spec.name,
        kind: spec.kind,
        state: 'stopped',
        pids: [],
        sessions: 0,
        restarts: 0,
        stderr: [],
      };
      return {
        ...status,
        ...(spec.description !== undefined && { description: spec.description }),
        disabled: spec.disabled,
      };
    });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.stop()));
  }
}
