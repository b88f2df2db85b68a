// The embedded twin of the Redis store for a single gateway node: the same keys (by name), the
// same buckets, distinct-recipient memory, baseline, holds and suspensions, the same expiry; the
// conformance suite (test/e2e/rate-store.test.ts) runs the same cases against both. Time is this
// process's clock. Expired entries are dropped when touched and by a sweep every minute.
import { BUCKETS, baselineDecay, type Plan } from './plan.js';
import type { Counts, RateSample, RateStore, RecordResult, Subject, SubjectStatus } from './store.js';
import { subjectKeys } from './redis-store.js';

interface Entry<T> {
  value: T;
  /** ms since the epoch; Infinity: no expiry */
  expires: number;
}

const CODES = ['m', 'o', 'f', 'x', 's'] as const;
const SLOT: Record<string, number> = { m: 0, o: 2, f: 3, x: 4, s: 5 };

export class MemoryRateStore implements RateStore {
  readonly kind = 'memory';
  roundTrips = 0;
  private readonly data = new Map<string, Entry<unknown>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** keys held (expired ones dropped first): for the tests' expiry checks */
  keys(): string[] {
    this.sweep();
    return [...this.data.keys()];
  }

  private get<T>(key: string): T | undefined {
    const e = this.data.get(key);
    if (!e) return undefined;
    if (e.expires <= this.clock()) {
      this.data.delete(key);
      return undefined;
    }
    return e.value as T;
  }

  private set(key: string, value: unknown, ttl: number): void {
    this.data.set(key, { value, expires: ttl > 0 ? this.clock() + ttl : Infinity });
  }

  private sweep(): void {
    const now = this.clock();
    for (const [key, e] of this.data) if (e.expires <= now) this.data.delete(key);
  }

  async status(subjects: Subject[], plan: Plan): Promise<SubjectStatus[]> {
    this.roundTrips++;
    return subjects.map((subject) => {
      const k = subjectKeys(plan, subject);
      return { subject, hold: this.get<string>(k.hold) ?? null, suspended: this.get<string>(k.suspension) ?? null };
    });
  }

  async record(subjects: Subject[], sample: RateSample, plan: Plan): Promise<RecordResult[]> {
    this.roundTrips++;
    return subjects.map((s) => this.run('record', s, sample, plan));
  }

  async peek(subjects: Subject[], plan: Plan): Promise<(RecordResult & { hold: string | null })[]> {
    this.roundTrips++;
    const empty: RateSample = { office: false, fromMismatch: false, macro: false, spoof: false, externalRecipients: [] };
    return subjects.map((s) => ({ ...this.run('peek', s, empty, plan), hold: this.get<string>(subjectKeys(plan, s).hold) ?? null }));
  }

  async suspend(subject: Subject, reason: string, plan: Plan): Promise<void> {
    this.roundTrips++;
    this.set(subjectKeys(plan, subject).suspension, `MANUAL|${this.clock()}|${reason}`, plan.suspend.ttl);
  }

  async unsuspend(subject: Subject, plan: Plan): Promise<boolean> {
    this.roundTrips++;
    const k = subjectKeys(plan, subject);
    const had = this.get(k.suspension) !== undefined || this.get(k.hold) !== undefined;
    this.data.delete(k.suspension);
    this.data.delete(k.hold);
    return had;
  }

  async subjects(plan: Plan, window: number): Promise<Subject[]> {
    this.roundTrips++;
    const head = `${plan.prefix}{`;
    const tail = `}:c:${window}`;
    return this.keys()
      .filter((k) => k.startsWith(head) && k.endsWith(tail))
      .map((k) => k.slice(head.length, k.length - tail.length));
  }

  /** The rate script (src/rate/lua.ts), line for line. */
  private run(mode: 'record' | 'peek', subject: Subject, sample: RateSample, plan: Plan): RecordResult {
    const now = this.clock();
    const record = mode === 'record';
    const k = subjectKeys(plan, subject);
    const win = plan.windows;
    const maxWin = Math.max(...win);
    const rcpts = sample.externalRecipients;
    const e = rcpts.length;
    const inc = [1, +sample.office, +sample.fromMismatch, +sample.macro, +sample.spoof];
    const zset = this.get<Map<string, number>>(k.recipients);
    const seen = rcpts.map((r) => zset?.get(r) ?? -1);

    const counts: Counts[] = [];
    const stale: string[][] = [];
    win.forEach((w, i) => {
      const size = Math.ceil(w / BUCKETS);
      const cur = Math.floor(now / size);
      const c: Counts = [0, 0, 0, 0, 0, 0];
      const old: string[] = [];
      for (const [f, v] of this.get<Map<string, number>>(k.windows[i]) ?? []) {
        const sep = f.indexOf(':');
        const bucket = Number(f.slice(0, sep));
        if (bucket > cur - BUCKETS) {
          const slot = SLOT[f.slice(sep + 1)];
          if (slot !== undefined) c[slot] += v;
        } else old.push(f);
      }
      let distinct = 0;
      for (const at of zset?.values() ?? []) if (at > now - w) distinct++;
      c[1] = distinct;
      if (record) {
        c[0] += inc[0];
        c[2] += inc[1];
        c[3] += inc[2];
        c[4] += inc[3];
        c[5] += inc[4];
        for (const at of seen) if (at <= now - w) c[1]++;
      }
      counts.push(c);
      stale.push(old);
    });

    const b = plan.baseline;
    const decay = baselineDecay(plan);
    let avg = 0;
    let nper = 0;
    let bcur = 0;
    let period = 0;
    if (b.action !== null) {
      period = Math.floor(now / b.period);
      const stored = this.get<{ a: number; n: number; h: number; c: number }>(k.baseline);
      if (stored) {
        ({ a: avg, n: nper, c: bcur } = stored);
        if (stored.h < period) {
          const alpha = Math.max(1 / (nper + 1), 1 - decay);
          avg += alpha * (bcur - avg);
          nper++;
          let gap = period - stored.h - 1;
          while (gap > 0 && 1 / (nper + 1) > 1 - decay) {
            avg *= 1 - 1 / (nper + 1);
            nper++;
            gap--;
          }
          if (gap > 0) {
            avg *= decay ** gap;
            nper += gap;
          }
          bcur = 0;
        }
      }
      if (record) {
        const start = period * b.period;
        for (const at of seen) if (at < start) bcur++;
      }
    }

    let susp = this.get<string>(k.suspension) ?? null;
    const fired: number[] = [];
    let blocks = false;
    let suspends = false;
    let holdValue: string | undefined;
    let holdTtl = 0;
    let suspendReason = '';
    if (record) {
      const adds = [inc[0], e, inc[1], inc[2], inc[3], inc[4]];
      plan.thresholds.forEach((t, i) => {
        const metric = METRIC_SLOT[t.metric];
        const v = counts[t.window][metric];
        if (adds[metric] > 0 && v > t.limit) {
          fired.push(i);
          if (t.blocks && !blocks) {
            blocks = true;
            holdValue = `${t.symbol}|${v}|${t.limit}|${win[t.window]}`;
            holdTtl = Math.ceil(win[t.window] / BUCKETS);
          }
          if (t.suspends && !suspends) {
            suspends = true;
            suspendReason = `${t.symbol}|${now}|${v} > ${t.limit} in ${win[t.window]}ms`;
          }
        }
      });
      if (b.action !== null && e > 0 && bcur > b.floor && bcur > b.factor * avg) {
        fired.push(-1);
        if (b.blocks && !blocks) {
          blocks = true;
          holdValue = `RATE_BASELINE_JUMP|${bcur}|${b.factor * avg}|${b.period}`;
          holdTtl = Math.ceil(b.period / BUCKETS);
        }
        if (b.suspends && !suspends) {
          suspends = true;
          suspendReason = `RATE_BASELINE_JUMP|${now}|${bcur} > ${b.factor} x ${avg} per ${b.period}ms`;
        }
      }
      if (suspends && !susp) {
        susp = suspendReason;
        this.set(k.suspension, susp, plan.suspend.ttl);
      }
      if (susp && plan.suspend.blocks) blocks = true;
      if (holdValue && holdTtl > 0) this.set(k.hold, holdValue, holdTtl);
    }

    const committed = record && !blocks;
    if (committed) {
      win.forEach((w, i) => {
        const size = Math.ceil(w / BUCKETS);
        const cur = Math.floor(now / size);
        const hash = this.get<Map<string, number>>(k.windows[i]) ?? new Map<string, number>();
        for (const f of stale[i]) hash.delete(f);
        CODES.forEach((code, j) => {
          if (inc[j] > 0) hash.set(`${cur}:${code}`, (hash.get(`${cur}:${code}`) ?? 0) + inc[j]);
        });
        this.set(k.windows[i], hash, w + size);
      });
      if (e > 0) {
        const z = zset ?? new Map<string, number>();
        for (const r of rcpts) {
          z.delete(r); // re-insert: Map order = last-seen order, oldest first
          z.set(r, now);
        }
        for (const [r, at] of z) if (at <= now - maxWin) z.delete(r);
        let excess = z.size - plan.cap;
        for (const r of z.keys()) {
          if (excess-- <= 0) break;
          z.delete(r);
        }
        this.set(k.recipients, z, maxWin);
      }
      if (b.action !== null) this.set(k.baseline, { a: avg, n: nper, h: period, c: bcur }, b.ttl);
    }

    return { subject, committed, suspended: susp, fired, counts, baseline: { current: bcur, average: avg } };
  }
}

const METRIC_SLOT = { messages: 0, externalRecipients: 1, office: 2, fromMismatch: 3, macro: 4, spoof: 5 } as const;
