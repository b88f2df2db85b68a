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
import { open, readFile, stat } from 'node:fs/promises';
import { matches, type ListFilter, type Matchable } from './query.js';
import { pendingRequests } from './requests.js';
import { QuarantineError, ulidTime, type QuarantineMetadata, type QuarantineStore } from './store.js';

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
/** selections remembered (filter → matching ids) */
const MEMO_SIZE = 16;

export class QuarantineCatalog {
  private ids: string[] = [];
  private dirMtime = -1;
  private listedAt = 0;
  private readonly summaries = new Map<string, Summary>();
  private readonly problems = new Map<string, QuarantineError>();
  private auditOffset = 0;
  private auditSize = 0;
  private refreshing: Promise<void> | undefined;
  /** loads one after another: a page asked for while start-up reads everything waits, and reads nothing twice */
  private loading: Promise<void> = Promise.resolve();
  /** bumped by every change seen; the memo of selections is only good for one generation */
  private generation = 0;
  private readonly memo = new Map<string, { generation: number; ids: string[]; problems: QuarantineError[] }>();

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
    // paging through one filter asks the same question again and again: answered once per change
    const key = JSON.stringify(filter);
    const known = this.memo.get(key);
    if (known?.generation === this.generation) return { ids: known.ids, problems: [...known.problems] };
    const ids = inRange.filter((id) => {
      const summary = this.summaries.get(id);
      return summary !== undefined && matches(summary, filter);
    });
    const problems = this.problems.size ? inRange.flatMap((id) => this.problems.get(id) ?? []) : [];
    if (this.memo.size >= MEMO_SIZE) this.memo.delete(this.memo.keys().next().value!);
    this.memo.set(key, { generation: this.generation, ids, problems });
    return { ids, problems: [...problems] };
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
        const before = this.summaries.get(id);
        const now = summarize(meta);
        // changed without a line in the audit log (or before we read it): what was selected is stale
        if (before && JSON.stringify(before) !== JSON.stringify(now)) this.generation++;
        this.summaries.set(id, now);
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
    this.generation++;
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
    const ids = await this.store.ids();
    if (ids.length !== this.ids.length || ids.at(-1) !== this.ids.at(-1) || ids[0] !== this.ids[0]) this.generation++;
    this.ids = ids;
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
      this.generation++;
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

  private load(ids: string[]): Promise<void> {
    const next = this.loading.then(() => this.readMissing(ids));
    this.loading = next.catch(() => undefined);
    return next;
  }

  private async readMissing(ids: string[]): Promise<void> {
    const missing = ids.filter((id) => !this.summaries.has(id) && !this.problems.has(id));
    if (missing.length) this.generation++;
    let next = 0;
    const worker = async () => {
      while (next < missing.length) {
        const id = missing[next++];
        const file = this.store.jsonFile(id);
        try {
          this.summaries.set(id, summaryOf(await readFile(file, 'utf8'), file, id));
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
  return !!(filter.states?.length || filter.symbols?.length || filter.sender !== undefined || filter.recipient !== undefined || filter.requested);
}

/**
 * The summary straight from a metadata file's text: only the fields the filters read, each checked
 * (the full schema check of store.get costs more than the read itself over 100,000 files; every item
 * shown is read through store.get anyway).
 */
function summaryOf(json: string, file: string, id: string): Summary {
  const corrupt = (what: string) => new QuarantineError(`${file}: corrupt metadata: ${what}`, 'corrupt');
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(json) as Record<string, unknown>;
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  const envelope = value.envelope as { mailFrom?: unknown; rcptTo?: unknown } | undefined;
  const findings = value.findings;
  if (value.id !== id) throw corrupt(`holds id ${String(value.id)}, not ${id}`);
  if (typeof value.receivedAt !== 'string') throw corrupt('receivedAt');
  if (value.state !== 'held' && value.state !== 'released' && value.state !== 'deleted') throw corrupt('state');
  if (typeof envelope?.mailFrom !== 'string' || !Array.isArray(envelope.rcptTo) || !envelope.rcptTo.every((r) => typeof r === 'string'))
    throw corrupt('envelope');
  if (!Array.isArray(findings) || !findings.every((f: { symbol?: unknown }) => typeof f?.symbol === 'string')) throw corrupt('findings');
  const history = value.history;
  if (
    !Array.isArray(history) ||
    !history.every(
      (h: { event?: unknown; recipients?: unknown }) => typeof h?.event === 'string' && (h.recipients === undefined || Array.isArray(h.recipients)),
    )
  )
    throw corrupt('history');
  return {
    receivedAt: value.receivedAt,
    state: value.state,
    findings: (findings as { symbol: string; excepted?: string }[]).filter((f) => !f.excepted).map((f) => ({ symbol: f.symbol })),
    envelope: { mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo },
    // pendingRequests reads only the state and the history, both checked above
    requested: pendingRequests({ state: value.state, history: history as QuarantineMetadata['history'] } as QuarantineMetadata).length > 0,
  };
}

/** What the filters need of an item, and no more (a few hundred bytes each). */
function summarize(meta: QuarantineMetadata): Summary {
  return {
    receivedAt: meta.receivedAt,
    state: meta.state,
    findings: meta.findings.filter((f) => !f.excepted).map((f) => ({ symbol: f.symbol })),
    envelope: { mailFrom: meta.envelope.mailFrom, rcptTo: meta.envelope.rcptTo },
    requested: pendingRequests(meta).length > 0,
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
