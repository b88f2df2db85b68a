// Which message's scan gets the next free worker: the one whose message has had the least worker
// time so far (ties: first come). An ordinary message's attachment, which has had none, goes ahead
// of a message that has already spent seconds decrypting; turns are short (key-cache.ts), so it
// waits for at most one turn. Piscina's own queue is first-come-first-served and passes abortable
// tasks through an unordered side queue, so the order is kept here and piscina only ever gets as
// many tasks as it has workers.

interface Waiting {
  workedMs: number;
  seq: number;
  go: () => void;
}

export class Turns {
  private running = 0;
  private seq = 0;
  private readonly waiting: Waiting[] = [];

  constructor(private readonly slots: number) {}

  /** Resolves when a worker is this caller's; it must call release() once done. Rejects with the signal's reason if it aborts first. */
  acquire(workedMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.running < this.slots && !this.waiting.length) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Waiting = {
        workedMs,
        seq: this.seq++,
        go: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // sorted by (workedMs, seq): binary search for the first entry that goes after this one
      let lo = 0;
      let hi = this.waiting.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const other = this.waiting[mid];
        if (other.workedMs < workedMs || (other.workedMs === workedMs && other.seq < entry.seq)) lo = mid + 1;
        else hi = mid;
      }
      this.waiting.splice(lo, 0, entry);
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next.go();
    else this.running--;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
