// The console's overview counters: messages by action per hour and per day, findings by symbol per
// hour. Kept in the state backend so every gateway node adds to the same numbers (Redis), or in the
// process (the embedded memory backend). Bounded: one hash per hour (expires after 49 hours) and per
// day (32 days); their fields are the five actions and the symbols, which are the policy's own names
// (checked against SYMBOL; the memory twin also stops at MAX_FIELDS).
import type { RedisClient, StateBackend } from './index.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
const HOUR_TTL = 49 * HOUR;
const DAY_TTL = 32 * DAY;
const MAX_FIELDS = 512;
const SYMBOL = /^[A-Z][A-Z0-9_]{0,63}$/;

export interface RollupView {
  /** oldest first: the hour's start (ms) and its messages by action */
  hours: { start: number; actions: Record<string, number> }[];
  /** over the same hours, most frequent first */
  symbols: { symbol: string; count: number }[];
  /** oldest first: the day's start (ms, UTC) and its messages by action */
  days: { start: number; actions: Record<string, number> }[];
}

export interface Rollup {
  /** Counts one judged message; never throws (a state failure loses a count, never a message). */
  record(at: number, action: string, symbols: string[]): Promise<void>;
  read(now: number, hours: number, days: number): Promise<RollupView>;
}

function fieldsFor(action: string, symbols: string[]): { hour: string[]; day: string[] } {
  const hour = [`a:${action}`];
  for (const s of new Set(symbols)) if (SYMBOL.test(s)) hour.push(`s:${s}`);
  return { hour, day: [`a:${action}`] };
}

function view(now: number, hours: number, days: number, hourly: Record<string, string>[], daily: Record<string, string>[]): RollupView {
  const firstHour = Math.floor(now / HOUR) * HOUR - (hours - 1) * HOUR;
  const firstDay = Math.floor(now / DAY) * DAY - (days - 1) * DAY;
  const symbols = new Map<string, number>();
  const actionsOf = (fields: Record<string, string>) => {
    const actions: Record<string, number> = {};
    for (const [k, v] of Object.entries(fields)) if (k.startsWith('a:')) actions[k.slice(2)] = Number(v);
    return actions;
  };
  const result: RollupView = {
    hours: hourly.map((fields, i) => {
      for (const [k, v] of Object.entries(fields)) if (k.startsWith('s:')) symbols.set(k.slice(2), (symbols.get(k.slice(2)) ?? 0) + Number(v));
      return { start: firstHour + i * HOUR, actions: actionsOf(fields) };
    }),
    symbols: [],
    days: daily.map((fields, i) => ({ start: firstDay + i * DAY, actions: actionsOf(fields) })),
  };
  result.symbols = [...symbols].map(([symbol, count]) => ({ symbol, count })).sort((a, b) => b.count - a.count || a.symbol.localeCompare(b.symbol));
  return result;
}

function starts(now: number, count: number, unit: number): number[] {
  const last = Math.floor(now / unit) * unit;
  return Array.from({ length: count }, (_, i) => last - (count - 1 - i) * unit);
}

export class MemoryRollup implements Rollup {
  private readonly buckets = new Map<string, { expires: number; fields: Map<string, number> }>();

  record(at: number, action: string, symbols: string[]): Promise<void> {
    const { hour, day } = fieldsFor(action, symbols);
    this.add(`h:${Math.floor(at / HOUR) * HOUR}`, hour, at, at + HOUR_TTL);
    this.add(`d:${Math.floor(at / DAY) * DAY}`, day, at, at + DAY_TTL);
    return Promise.resolve();
  }

  read(now: number, hours: number, days: number): Promise<RollupView> {
    this.prune(now);
    const get = (key: string) => Object.fromEntries([...(this.buckets.get(key)?.fields ?? [])].map(([k, v]) => [k, String(v)]));
    return Promise.resolve(
      view(
        now,
        hours,
        days,
        starts(now, hours, HOUR).map((s) => get(`h:${s}`)),
        starts(now, days, DAY).map((s) => get(`d:${s}`)),
      ),
    );
  }

  private add(key: string, fields: string[], now: number, expires: number): void {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      this.prune(now);
      bucket = { expires, fields: new Map() };
      this.buckets.set(key, bucket);
    }
    for (const f of fields) if (bucket.fields.has(f) || bucket.fields.size < MAX_FIELDS) bucket.fields.set(f, (bucket.fields.get(f) ?? 0) + 1);
  }

  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.expires < now) this.buckets.delete(key);
  }
}

export class RedisRollup implements Rollup {
  constructor(
    private readonly redis: RedisClient,
    /** hash-tagged (`{…}:`) so that a Redis Cluster keeps every bucket in one slot */
    private readonly prefix: string,
  ) {}

  async record(at: number, action: string, symbols: string[]): Promise<void> {
    const { hour, day } = fieldsFor(action, symbols);
    const hourKey = `${this.prefix}h:${Math.floor(at / HOUR) * HOUR}`;
    const dayKey = `${this.prefix}d:${Math.floor(at / DAY) * DAY}`;
    const batch = this.redis.multi();
    for (const f of hour) batch.hincrby(hourKey, f, 1);
    batch.pexpire(hourKey, HOUR_TTL);
    for (const f of day) batch.hincrby(dayKey, f, 1);
    batch.pexpire(dayKey, DAY_TTL);
    await batch.exec();
  }

  async read(now: number, hours: number, days: number): Promise<RollupView> {
    const batch = this.redis.multi();
    for (const s of starts(now, hours, HOUR)) batch.hgetall(`${this.prefix}h:${s}`);
    for (const s of starts(now, days, DAY)) batch.hgetall(`${this.prefix}d:${s}`);
    const replies = (await batch.exec()) ?? [];
    const maps = replies.map(([err, value]) => {
      if (err) throw err;
      return (value ?? {}) as Record<string, string>;
    });
    return view(now, hours, days, maps.slice(0, hours), maps.slice(hours));
  }
}

const rollups = new WeakMap<object, Rollup>();

/** The one rollup of a state backend (per Redis client, or per in-memory backend object). */
export function rollupFor(state: StateBackend, prefix: string): Rollup {
  const owner: object = state.kind === 'redis' ? state.redis : state;
  let rollup = rollups.get(owner);
  if (!rollup) {
    rollup = state.kind === 'redis' ? new RedisRollup(state.redis, prefix) : new MemoryRollup();
    rollups.set(owner, rollup);
  }
  return rollup;
}
