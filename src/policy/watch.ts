// Keeps the active policy. A reload (file change or SIGHUP) either swaps in a fully valid policy or
// logs why it did not and keeps the last good one: never a crash, never half a policy.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../observe/log.js';
import { loadPolicy, PolicyError, type LoadedPolicy } from './load.js';
import type { Policy } from './schema.js';

export class PolicyHolder {
  private loaded: LoadedPolicy;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private readonly listeners: ((loaded: LoadedPolicy) => void)[] = [];

  constructor(
    readonly file: string,
    private readonly overrides: string[],
    private readonly log: Logger,
  ) {
    this.loaded = loadPolicy(file, overrides);
    this.log.info({ event: 'policy_loaded', file, version: this.loaded.version }, 'policy loaded');
  }

  get policy(): Policy {
    return this.loaded.policy;
  }

  get version(): string {
    return this.loaded.version;
  }

  onChange(listener: (loaded: LoadedPolicy) => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the file; returns whether a new policy is active. */
  reload(reason: string): boolean {
    let next: LoadedPolicy;
    try {
      next = loadPolicy(this.file, this.overrides);
    } catch (err) {
      const problems = err instanceof PolicyError ? err.problems : [{ where: this.file, key: '', message: String(err) }];
      this.log.error(
        { event: 'policy_rejected', file: this.file, reason, problems, activeVersion: this.version },
        'policy reload failed; the last good policy stays active',
      );
      return false;
    }
    if (next.version === this.version) {
      this.log.info({ event: 'policy_unchanged', file: this.file, reason, version: this.version }, 'policy unchanged');
      return false;
    }
    const previous = this.version;
    this.loaded = next;
    this.log.info({ event: 'policy_loaded', file: this.file, reason, version: next.version, previous }, 'policy reloaded');
    for (const listener of this.listeners) listener(next);
    return true;
  }

  /**
   * Watches the file's directory rather than the file: editors and config managers replace the file
   * by rename, which a watch on the old inode would never see.
   */
  watch(): void {
    const dir = path.dirname(path.resolve(this.file));
    const base = path.basename(this.file);
    this.watcher = watch(dir, (_event, name) => {
      if (name !== null && name !== base) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload('file changed'), 150);
    });
    this.watcher.on('error', (err) => this.log.error({ event: 'policy_watch_error', err }, 'policy watch failed'));
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }
}
