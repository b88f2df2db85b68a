// Paging and filtering over a large quarantine (100,000 items and more) for the console, without
// reading every ID.json on every page. The store stays the only truth (the files in the shared
// directory); this is a cache of it kept in step cheaply:
// - the ids (ULIDs, so sorted by time) come from the directory listing, read again only when the
//   directory's mtime moved (every item written, rewritten or removed renames a file in it);
// - a small summary per item (what the filters look at) is read once; every later change of an
//   item, by any node (release, delete, purge, the password retry), is a line in `audit.log`, which
//   is read on from where the last look stopped, and the summaries of the ids it names are dropped;
// - the items of the page shown are always read fresh from their files.
// The time filter needs no summary at all: a ULID starts with its creation time.
import { open, stat } from 'node:fs/promises';
import { matches, type ListFilter, type Matchable } from './query.js';
import { parseMetadata, QuarantineError, ulidTime, type QuarantineMetadata, type QuarantineStore } from './store.js';
import { readFile } from 'node:fs/promises';

export interface CatalogPage {
  /** newest first, read fresh from their files */
  items: QuarantineMetadata[];
  /** how many items match in all */
  total: number;
  /** cursor for the next older page (`before`), when there is one */
  older?: string;
  /** cursor for the next newer page (`after`), when there is one */
  newer?: string;
  problems: QuarantineError[];
}

type Summary = Matchable;

/** A directory whose mtime is this recent may change again within the same mtime tick: not trusted. */
const MTIME_SETTLE_MS = 2000;
const READ_CONCURRENCY = 32;

export class QuarantineCatalog {
  private ids: string[] = [];
  private dirMtime = -1;
  private listedAt = 0;
  private readonly summaries = new Map<string, Summary>();
  private readonly problems = new Map<string, QuarantineError>();
  private auditOffset = 0;
  private auditSize = 0;
  private refreshing: Promise<void> | undefined;

  constructor(readonly store: QuarantineStore) {}

  /** How many items the store holds (as of the last refresh). */
  get size(): number {
    return this.ids.length;
  }

  /** Every id, oldest first (as of the last refresh). */
  allIds(): readonly string[] {
    return this.ids;
  }

  /** Brings the id list and the summaries in step with the directory and the audit log. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Reads every summary not yet known (e.g. at start-up, so the first filtered page is quick). */
  async warm(): Promise<void> {
    await this.refresh();
    await this.load(this.ids);
  }

  /** Ids matching the filter, oldest first. */
  async select(filter: ListFilter): Promise<{ ids: string[]; problems: QuarantineError[] }> {
    await this.refresh();
    const inRange = this.range(filter.since, filter.until);
    if (!needsSummary(filter)) return { ids: inRange, problems: [] };
    await this.load(inRange);
    const ids = inRange.filter((id) => {
      const summary = this.summaries.get(id);
      return summary !== undefined && matches(summary, filter);
    });
    return { ids, problems: inRange.flatMap((id) => this.problems.get(id) ?? []) };
  }

  /** One page, newest first: the `limit` items before `before` (or after `after`, or the newest). */
  async page(filter: ListFilter, cursor: { before?: string; after?: string; limit: number }): Promise<CatalogPage> {
    const { ids, problems } = await this.select(filter);
    let end = ids.length; // exclusive, in ascending order
    if (cursor.before) end = lowerBound(ids, cursor.before);
    let start = Math.max(0, end - cursor.limit);
    if (cursor.after && !cursor.before) {
      start = upperBound(ids, cursor.after);
      end = Math.min(ids.length, start + cursor.limit);
    }
    const chosen = ids.slice(start, end).reverse();
    const items: QuarantineMetadata[] = [];
    for (const id of chosen) {
      try {
        const meta = await this.store.get(id);
        this.summaries.set(id, summarize(meta));
        items.push(meta);
      } catch (err) {
        if (err instanceof QuarantineError && err.kind !== 'not-found') problems.push(err);
      }
    }
    return {
      items,
      total: ids.length,
      ...(start > 0 ? { older: ids[start] } : {}),
      ...(end < ids.length ? { newer: ids[end - 1] } : {}),
      problems,
    };
  }

  /** Items per UTC day (from the ids alone), oldest day first, for the last `days` days. */
  perDay(now: number, days: number): { start: number; count: number }[] {
    const DAY = 86_400_000;
    const first = Math.floor(now / DAY) * DAY - (days - 1) * DAY;
    const counts = new Array<number>(days).fill(0);
    for (let i = lowerBoundTime(this.ids, first); i < this.ids.length; i++) {
      const day = Math.floor((ulidTime(this.ids[i]) - first) / DAY);
      if (day >= 0 && day < days) counts[day]++;
    }
    return counts.map((count, i) => ({ start: first + i * DAY, count }));
  }

  /** Forgets what is known of an item (this process changed it). */
  invalidate(id: string): void {
    this.summaries.delete(id);
    this.problems.delete(id);
  }

  private range(since?: number, until?: number): string[] {
    const from = since === undefined ? 0 : lowerBoundTime(this.ids, since);
    const to = until === undefined ? this.ids.length : lowerBoundTime(this.ids, until);
    return this.ids.slice(from, Math.max(from, to));
  }

  private async doRefresh(): Promise<void> {
    await this.followAudit();
    const info = await stat(this.store.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new QuarantineError(`${this.store.dir}: cannot read: ${err.message}`, 'io');
    });
    if (!info) {
      this.ids = [];
      return;
    }
    const settled = this.listedAt - info.mtimeMs > MTIME_SETTLE_MS;
    if (info.mtimeMs === this.dirMtime && settled) return;
    this.listedAt = Date.now();
    this.dirMtime = info.mtimeMs;
    this.ids = await this.store.ids();
  }

  /** Reads the audit log on from the last offset; the ids it names changed, so their summaries go. */
  private async followAudit(): Promise<void> {
    const file = this.store.auditFile;
    const info = await stat(file).catch(() => undefined);
    if (!info) return;
    if (info.size < this.auditSize) {
      // rotated or truncated: whatever changed meanwhile is unknown, so nothing cached is trusted
      this.summaries.clear();
      this.problems.clear();
      this.auditOffset = 0;
    }
    this.auditSize = info.size;
    if (info.size === this.auditOffset) return;
    const handle = await open(file, 'r');
    try {
      const length = info.size - this.auditOffset;
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.auditOffset);
      const text = buffer.subarray(0, bytesRead).toString('utf8');
      const complete = text.lastIndexOf('\n') + 1; // a line still being appended is read next time
      this.auditOffset += Buffer.byteLength(text.slice(0, complete));
      for (const line of text.slice(0, complete).split('\n')) {
        const id = /"id":"([0-9A-HJKMNP-TV-Z]{26})"/.exec(line)?.[1];
        if (id) this.invalidate(id);
      }
    } finally {
      await handle.close();
    }
  }

  private async load(ids: string[]): Promise<void> {
    const missing = ids.filter((id) => !this.summaries.has(id) && !this.problems.has(id));
    let next = 0;
    const worker = async () => {
      while (next < missing.length) {
        const id = missing[next++];
        const file = this.store.jsonFile(id);
        try {
          this.summaries.set(id, summarize(parseMetadata(await readFile(file, 'utf8'), file, id)));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
          this.problems.set(id, err instanceof QuarantineError ? err : new QuarantineError(`${file}: cannot read: ${(err as Error).message}`, 'io'));
        }
      }
    };
    await Promise.all(Array.from({ length: READ_CONCURRENCY }, worker));
  }
}

function needsSummary(filter: ListFilter): boolean {
  return !!(filter.states?.length || filter.symbols?.length || filter.sender !== undefined || filter.recipient !== undefined);
}

/** What the filters need of an item, and no more (a few hundred bytes each). */
function summarize(meta: QuarantineMetadata): Summary {
  return {
    receivedAt: meta.receivedAt,
    state: meta.state,
    findings: meta.findings.filter((f) => !f.excepted).map((f) => ({ symbol: f.symbol })),
    envelope: { mailFrom: meta.envelope.mailFrom, rcptTo: meta.envelope.rcptTo },
  };
}

/** First index whose id is >= `id`. */
function lowerBound(ids: string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose id is > `id`. */
function upperBound(ids: string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose ULID time is >= `time`. */
function lowerBoundTime(ids: readonly string[], time: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ulidTime(ids[mid]) < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
