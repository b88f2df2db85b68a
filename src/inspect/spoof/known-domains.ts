// The lookalike check's targets from the thread memory: a per-process copy of the known
// correspondent domains, indexed (./lookalike.ts). Read whole once and every few minutes, and in
// between at most once a second for what changed, so a message costs no Redis round trip of its own
// beyond that; a domain learned on another gateway node is a target here within a second.
import type { ThreadMemory } from '../../state/thread-memory.js';
import { LookalikeIndex, targetOf } from './lookalike.js';

/** between two reads of what changed */
export const KNOWN_DOMAINS_REFRESH_MS = 1000;
/** between two whole reads (which also let forgotten domains go) */
const FULL_READ_MS = 10 * 60_000;
/**
 * An incremental read asks for the domains that will be forgotten after the latest it has seen, less
 * this overlap (gateway nodes' clocks differ a little). It assumes spoof.memoryTtl does not shrink;
 * when a reload shortens it, the next whole read catches up.
 */
const OVERLAP_MS = 60_000;

export interface KnownDomains {
  index: LookalikeIndex;
  /** is `domain` (registrable, A-labels) a correspondent that is still remembered? */
  known(domain: string): boolean;
}

class Snapshot implements KnownDomains {
  index = new LookalikeIndex();
  private expiries = new Map<string, number>();
  private readAt = 0;
  private fullReadAt = 0;
  private latest = 0;
  private reading: Promise<void> | undefined;

  constructor(private readonly memory: ThreadMemory) {}

  known(domain: string): boolean {
    return (this.expiries.get(domain) ?? 0) > Date.now();
  }

  /** Brings the copy up to date if it is older than the refresh interval; a memory that cannot be read leaves it as it was. */
  refresh(): Promise<void> {
    const now = Date.now();
    if (now - this.readAt < KNOWN_DOMAINS_REFRESH_MS) return Promise.resolve();
    this.reading ??= this.read(now - this.fullReadAt >= FULL_READ_MS).finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(full: boolean): Promise<void> {
    const started = Date.now();
    this.readAt = started; // also after a failure: a memory that is down is not asked again for every message
    let entries: { domain: string; expires: number }[];
    try {
      entries = await this.memory.knownDomains(full ? undefined : this.latest - OVERLAP_MS);
    } catch {
      return; // STATE_UNAVAILABLE is reported by the memory lookup itself; lookalikes of internal domains still count
    }
    if (full) {
      this.index = new LookalikeIndex();
      this.expiries = new Map();
      this.fullReadAt = started;
    }
    for (const { domain, expires } of entries) {
      const target = targetOf(domain, 'correspondent');
      if (!target) continue;
      this.expiries.set(target.domain, Math.max(expires, this.expiries.get(target.domain) ?? 0));
      this.index.add(target);
      this.latest = Math.max(this.latest, expires);
    }
  }
}

const snapshots = new WeakMap<ThreadMemory, Snapshot>();

/** The known correspondent domains of `memory`, fresh to within KNOWN_DOMAINS_REFRESH_MS. */
export async function knownDomains(memory: ThreadMemory): Promise<KnownDomains> {
  let snapshot = snapshots.get(memory);
  if (!snapshot) snapshots.set(memory, (snapshot = new Snapshot(memory)));
  await snapshot.refresh();
  return snapshot;
}
