import { formatPath, type Diagnostic } from '../manifest/diagnostics.js';
import type { Environment } from '../manifest/interpolate.js';
import { loadManifest } from '../manifest/load.js';

/**
 * The value every `${VAR}` takes while an imported manifest is checked. The check is about the manifest,
 * not about the machine `import` runs on: variables are set where the proxy runs. A URL fits wherever a
 * variable may stand (a whole `url`, its host, a header, an argument), so no position fails for it.
 */
const STAND_IN = 'http://stand-in.invalid';
const STAND_IN_ENVIRONMENT: Environment = new Proxy({}, { get: () => STAND_IN });

/** Loads manifest text with the project's own loader, exactly as `validate` and `serve` would. */
export function checkManifestText(text: string): { errors: Diagnostic[]; warnings: Diagnostic[] } {
  const { diagnostics } = loadManifest({
    file: 'imported manifest',
    bytes: text,
    env: STAND_IN_ENVIRONMENT,
    // Only resolves relative `cwd`s, which a check does not use.
    baseDir: '/',
  });
  return {
    errors: diagnostics.filter((d) => d.severity === 'error'),
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
  };
}

/**
 * Why the loader would refuse one entry on its own, as messages relative to the entry (`args: must be
 * array`); empty when it loads. Checking entries one by one lets `import` skip the one bad server of a
 * file, with the loader's reason, instead of producing a manifest that does not load.
 */
export function entryProblems(section: 'servers' | 'adapters', name: string, value: object): string[] {
  const manifest = section === 'servers' ? { servers: { [name]: value } } : { adapters: [value] };
  const prefix = formatPath(section === 'servers' ? ['servers', name] : ['adapters', 0]);
  return checkManifestText(JSON.stringify(manifest)).errors.map((d) => {
    const path = d.path === prefix ? '' : d.path.startsWith(prefix) ? d.path.slice(prefix.length) : d.path;
    return path ? `${path.replace(/^\./, '')}: ${d.message}` : d.message;
  });
}
