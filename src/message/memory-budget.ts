// One process-wide budget for the bytes of mail held in memory (limits.memoryBudget): message bytes
// the spools keep in memory, and messages under inspection, whose MIME pass decodes their leaves into
// memory. Without it memory grew with maxClients × message size (50 messages of 25 MB: 1.2 GB).
//
// Two ways to spend it:
// - take(): never waits. A spool keeps a chunk in memory only if the budget has room for it right
//   now and nobody is waiting; otherwise it writes the message to its file (spooling beyond it).
// - acquire(): waits its turn, first come first served (back-pressure: the client just waits longer
//   for its reply). A request larger than the whole budget waits until nothing else is held, then
//   runs alone. Whoever waits holds nothing from the budget, so waiting never deadlocks; a waiter
//   whose signal aborts (the client went away) leaves the queue having taken nothing.

export class MemoryBudget {
  private held = 0;
  /** requests in their order, each with the bytes it asked for (clamped to the budget when granted) */
  private readonly waiting: { bytes: number; grant: (granted: number) => void }[] = [];

  constructor(private limit: number) {}

  /** Bytes the budget allows. */
  get capacity(): number {
    return this.limit;
  }

  /** A new limit (a policy reload): applies to what waits from now on; what is held stays held. */
  set capacity(limit: number) {
    this.limit = limit;
    this.grantWaiting();
  }

  /** Bytes held now. */
  get inUse(): number {
    return this.held;
  }

  /** Requests waiting for their turn. */
  get waiters(): number {
    return this.waiting.length;
  }

  /** Takes `bytes` now if they are free and nobody waits; false otherwise (never waits). */
  take(bytes: number): boolean {
    if (this.waiting.length || this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  /** Gives back bytes from take(). */
  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
    this.grantWaiting();
  }

  /** A lease now when the budget has room and nobody waits, else undefined (never waits). */
  tryAcquire(bytes: number): Lease | undefined {
    const needed = this.clamp(bytes);
    return this.take(needed) ? this.lease(needed) : undefined;
  }

  /**
   * A lease of `bytes` (at most the whole budget), in turn. Rejects with the signal's reason if it
   * aborts first; nothing is then held.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<Lease> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const now = this.tryAcquire(bytes);
    if (now) return Promise.resolve(now);
    return new Promise<Lease>((resolve, reject) => {
      const entry = {
        bytes,
        grant: (granted: number) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.lease(granted));
        },
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal!.reason as Error);
        // whoever waited behind it may fit now
        if (at === 0) this.grantWaiting();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** A request past the whole budget needs all of it: it runs when nothing else is held. */
  private clamp(bytes: number): number {
    return Math.min(Math.max(0, bytes), this.limit);
  }

  private lease(bytes: number): Lease {
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        this.give(bytes);
      },
    };
  }

  /** Grants waiters in order while the first one fits: none passes another (a large request is not starved). */
  private grantWaiting(): void {
    while (this.waiting.length) {
      const first = this.waiting[0];
      const needed = this.clamp(first.bytes);
      if (this.held + needed > this.limit) return;
      this.waiting.shift();
      this.held += needed;
      first.grant(needed);
    }
  }
}

/** Bytes held from a MemoryBudget until release() (safe to call more than once). */
export interface Lease {
  readonly bytes: number;
  release(): void;
}

/** The process's budget, shared by both front ends; its capacity follows the policy (limits.memoryBudget). */
export const memoryBudget = new MemoryBudget(128 * 1024 * 1024);
