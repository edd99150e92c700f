import { dirname, resolve } from 'node:path';
import type { Logger } from '../log.js';
import { formatDiagnostic } from '../manifest/diagnostics.js';
import type { Environment } from '../manifest/interpolate.js';
import { loadManifest } from '../manifest/load.js';
import { readManifestBytes } from '../manifest/read.js';
import type { Manifest } from '../manifest/types.js';
import type { Fleet, ReloadReport } from './fleet.js';

/**
 * Turns "the manifest file may have changed" into a fleet change. The file is read and loaded completely
 * before anything is touched; an unreadable or invalid file changes nothing and is reported, positioned,
 * in the logs and in /servers. Unchanged text is not reloaded (watchers report more often than files
 * change), except when asked explicitly (SIGHUP).
 */
export class Reloader {
  private lastText?: string;
  /** Told the outcome of every reload that ran, failed ones included (metrics count them). */
  onreport?: (report: ReloadReport) => void;
  /** Told each manifest that loaded, before its servers are applied: access control, origins, limits. */
  onmanifest?: (manifest: Manifest) => void;

  constructor(
    private readonly file: string,
    private readonly fleet: Fleet,
    private readonly env: Environment,
    private readonly log: Logger,
    private listen: Manifest['listen'],
  ) {}

  /** The text the fleet was started from: a watcher event that finds it unchanged does nothing. */
  started(text: string): void {
    this.lastText = text;
  }

  /**
   * Reads the manifest and applies it. Never rejects: a watcher, a signal or boot starts it with no one to
   * catch, so whatever a reload meets is reported as a failed one and the proxy keeps serving.
   */
  async reload(force = false): Promise<ReloadReport | undefined> {
    try {
      return await this.reloadNow(force);
    } catch (error) {
      return this.fail([error instanceof Error ? error.message : String(error)]);
    }
  }

  private async reloadNow(force: boolean): Promise<ReloadReport | undefined> {
    const read = await readManifestBytes(this.file);
    if ('unreadable' in read) return this.fail([read.unreadable]);
    this.log.debug('manifest-read', { file: this.file, bytes: read.bytes.length });
    const text = read.bytes.toString('utf8');
    if (!force && text === this.lastText) return undefined;
    this.lastText = text;

    const result = loadManifest({
      file: this.file,
      bytes: read.bytes,
      env: this.env,
      baseDir: dirname(resolve(this.file)),
    });
    if (!result.manifest) {
      return this.fail(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic));
    }
    // A manifest that loaded has only warnings left: the fleet logs them, and keeps them in the report
    // /servers shows.
    const warnings = result.diagnostics.map(formatDiagnostic);
    if (JSON.stringify(result.manifest.listen) !== JSON.stringify(this.listen)) {
      this.log.warn('listen-changed', {
        was: this.listen,
        now: result.manifest.listen,
        note: 'listen is read at start only: the proxy keeps listening where it started',
      });
      this.listen = result.manifest.listen;
    }
    // Settings first: a server the reload adds must be behind the new access rules when it appears.
    this.onmanifest?.(result.manifest);
    const report = await this.fleet.apply(result.manifest.servers, warnings);
    // Shutdown began while it applied: nothing was, and nothing is left to tell.
    if (this.fleet.isStopped) return undefined;
    const log = report.result === 'partial' ? this.log.error : this.log.info;
    log('reload', {
      result: report.result,
      errors: report.errors,
      changes: report.changes.filter((c) => c.action !== 'keep'),
    });
    this.onreport?.(report);
    return report;
  }

  private fail(errors: string[]): ReloadReport {
    const report = this.fleet.recordFailure(errors);
    this.log.error('reload', {
      result: 'failed',
      note: 'nothing changed; the servers keep running as they were',
      errors,
    });
    this.onreport?.(report);
    return report;
  }
}
