// Sender rates in Redis: one EVALSHA of the rate script per subject, all subjects of a message in
// one pipeline (one round trip; on Cluster the subjects live on different slots, so they go out
// concurrently instead). The script is loaded by EVAL the first time a server answers NOSCRIPT
// (after a restart or SCRIPT FLUSH too) and called by its SHA-1 afterwards.
import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../state/index.js';
import { RATE_SCRIPT } from './lua.js';
import { BUCKETS, baselineDecay, type Plan } from './plan.js';
import type { Counts, RateSample, RateStore, RecordResult, Subject, SubjectStatus } from './store.js';

const SHA = createHash('sha1').update(RATE_SCRIPT).digest('hex');

/** The keys of one subject; all share the hash tag `{subject}`, so they live on one Cluster slot. */
export function subjectKeys(plan: Plan, subject: Subject) {
  const base = `${plan.prefix}{${subject}}`;
  return {
    windows: plan.windows.map((w) => `${base}:c:${w}`),
    recipients: `${base}:r`,
    baseline: `${base}:b`,
    hold: `${base}:h`,
    suspension: `${base}:s`,
  };
}

type Raw = [number, string, string, number, string, number[], number[]];

export class RedisRateStore implements RateStore {
  readonly kind = 'redis';
  roundTrips = 0;

  constructor(readonly redis: RedisClient) {}

  async status(subjects: Subject[], plan: Plan): Promise<SubjectStatus[]> {
    if (!subjects.length) return [];
    const calls = subjects.map((s) => {
      const k = subjectKeys(plan, s);
      return ['mget', k.hold, k.suspension] as const;
    });
    const replies = (await this.many(calls.map((c) => [...c]))) as (string | null)[][];
    return subjects.map((subject, i) => ({ subject, hold: replies[i][0] ?? null, suspended: replies[i][1] ?? null }));
  }

  async record(subjects: Subject[], sample: RateSample, plan: Plan): Promise<RecordResult[]> {
    const raws = (await this.script(subjects.map((s) => this.args('record', s, sample, plan)))) as Raw[];
    return raws.map((raw, i) => parse(subjects[i], raw, plan));
  }

  async peek(subjects: Subject[], plan: Plan): Promise<(RecordResult & { hold: string | null })[]> {
    const empty: RateSample = { office: false, fromMismatch: false, macro: false, spoof: false, externalRecipients: [] };
    const raws = (await this.script(subjects.map((s) => this.args('peek', s, empty, plan)))) as Raw[];
    return raws.map((raw, i) => ({ ...parse(subjects[i], raw, plan), hold: raw[2] || null }));
  }

  async suspend(subject: Subject, reason: string, plan: Plan): Promise<void> {
    const k = subjectKeys(plan, subject);
    const ttl = plan.suspend.ttl;
    const value = `MANUAL|${Date.now()}|${reason}`;
    this.roundTrips++;
    if (ttl > 0) await this.redis.set(k.suspension, value, 'PX', ttl);
    else await this.redis.set(k.suspension, value);
  }

  async unsuspend(subject: Subject, plan: Plan): Promise<boolean> {
    const k = subjectKeys(plan, subject);
    this.roundTrips++;
    return (await this.redis.del(k.suspension, k.hold)) > 0;
  }

  async subjects(plan: Plan, window: number): Promise<Subject[]> {
    const head = `${plan.prefix}{`;
    const tail = `}:c:${window}`;
    const pattern = `${head.replace(/[*?[\]\\]/g, '\\$&')}*${tail}`;
    const nodes = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
    const found = new Set<Subject>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        this.roundTrips++;
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) found.add(key.slice(head.length, key.length - tail.length));
      } while (cursor !== '0');
    }
    return [...found];
  }

  private args(mode: 'record' | 'peek', subject: Subject, sample: RateSample, plan: Plan): (string | number)[] {
    const k = subjectKeys(plan, subject);
    const keys = [...k.windows, k.recipients, k.baseline, k.hold, k.suspension];
    const b = plan.baseline;
    const flag = b.action === null ? 0 : b.blocks ? 2 : 1;
    const args: (string | number)[] = [mode, plan.windows.length, BUCKETS, plan.cap, ...plan.windows];
    args.push(b.period, String(baselineDecay(plan)), b.factor, b.floor, flag, b.suspends ? 1 : 0, b.ttl);
    args.push(plan.suspend.ttl, plan.suspend.blocks ? 1 : 0);
    args.push(1, +sample.office, +sample.fromMismatch, +sample.macro, +sample.spoof);
    args.push(sample.externalRecipients.length, ...sample.externalRecipients);
    args.push(plan.thresholds.length);
    for (const t of plan.thresholds) {
      args.push(METRIC_INDEX[t.metric], t.window + 1, t.limit, t.blocks ? 1 : 0, t.suspends ? 1 : 0, t.symbol, Math.ceil(plan.windows[t.window] / BUCKETS));
    }
    return [SHA, keys.length, ...keys, ...args];
  }

  /** EVALSHA each call; the calls a server answered NOSCRIPT go again as EVAL (which caches it). */
  private async script(calls: (string | number)[][]): Promise<unknown[]> {
    const results = await this.many(
      calls.map((c) => ['evalsha', ...c]),
      true,
    );
    const missing = results.map((r, i) => (r instanceof Error ? i : -1)).filter((i) => i >= 0);
    if (missing.length) {
      const again = await this.many(missing.map((i) => ['eval', RATE_SCRIPT, ...calls[i].slice(1)]));
      missing.forEach((i, j) => (results[i] = again[j]));
    }
    return results;
  }

  /**
   * Sends commands in one round trip (a pipeline; on Cluster, concurrently). A NOSCRIPT error is
   * returned in place when `noscript` is set; any other error throws.
   */
  private async many(commands: (string | number)[][], noscript = false): Promise<unknown[]> {
    this.roundTrips++;
    let replies: [Error | null, unknown][];
    if (this.redis instanceof Cluster || commands.length === 1) {
      replies = await Promise.all(
        commands.map(([name, ...args]) =>
          this.redis.call(String(name), ...args).then(
            (r) => [null, r] as [null, unknown],
            (err: Error) => [err, null] as [Error, null],
          ),
        ),
      );
    } else {
      const pipeline = this.redis.pipeline();
      for (const [name, ...args] of commands) pipeline.call(String(name), ...args);
      replies = (await pipeline.exec()) ?? [];
    }
    return replies.map(([err, value]) => {
      if (!err) return value;
      if (noscript && /NOSCRIPT/.test(err.message)) return err;
      throw err;
    });
  }
}

const METRIC_INDEX = { messages: 1, externalRecipients: 2, office: 3, fromMismatch: 4, macro: 5, spoof: 6 } as const;

function parse(subject: Subject, raw: Raw, plan: Plan): RecordResult {
  const [committed, suspension, , current, average, fired, flat] = raw;
  const counts: Counts[] = plan.windows.map((_, w) => flat.slice(w * 6, w * 6 + 6).map(Number) as Counts);
  return {
    subject,
    committed: committed === 1,
    suspended: suspension || null,
    fired: fired.map(Number),
    counts,
    baseline: { current: Number(current), average: Number(average) || 0 },
  };
}
