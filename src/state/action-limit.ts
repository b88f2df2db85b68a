// How often one recipient may act on held mail by themselves (release requests, own releases): a
// fixed-window count per recipient in the state backend, so that every gateway node and the console
// see the same count. Redis: one INCR + PEXPIRE script per action; the embedded twin: a bounded map.
// Recipients are stored hashed, never in clear.
import { createHash } from 'node:crypto';
import type { StateBackend } from './index.js';

type RedisClient = Extract<StateBackend, { kind: 'redis' }>['redis'];

export interface ActionTake {
  allowed: boolean;
  /** actions counted in the current window, this one included when allowed */
  count: number;
  /** ms until the window ends */
  resetInMs: number;
}

export interface ActionLimiter {
  /** counts one action of `who` if fewer than `limit` were counted in the current window */
  take(who: string, limit: number, windowMs: number): Promise<ActionTake>;
}

/** The state backend could not answer (Redis down or slow); the action is refused, never let through uncounted. */
export class ActionLimitUnavailable extends Error {
  override name = 'ActionLimitUnavailable';
}

function keyOf(who: string): string {
  return createHash('sha256').update(`a:${who.trim().toLowerCase()}`).digest('base64url').slice(0, 22);
}

// returns { count after, pttl }; counts only below the limit
const TAKE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if n >= tonumber(ARGV[1]) then return { n, ttl, 0 } end
n = redis.call('INCR', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return { n, ttl, 1 }`;

export class RedisActionLimiter implements ActionLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'mailmoat:recipient-actions:',
  ) {}

  async take(who: string, limit: number, windowMs: number): Promise<ActionTake> {
    let reply: [number, number, number];
    try {
      reply = (await this.redis.eval(TAKE, 1, this.prefix + keyOf(who), limit, windowMs)) as [number, number, number];
    } catch (err) {
      throw new ActionLimitUnavailable((err as Error).message);
    }
    const [count, ttl, allowed] = reply;
    return { allowed: allowed === 1, count, resetInMs: Math.max(0, ttl) };
  }
}

export class MemoryActionLimiter implements ActionLimiter {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();

  constructor(
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  async take(who: string, limit: number, windowMs: number): Promise<ActionTake> {
    const key = keyOf(who);
    const now = this.now();
    let entry = this.windows.get(key);
    if (!entry || entry.endsAt <= now) {
      entry = { count: 0, endsAt: now + windowMs };
      this.windows.delete(key);
      this.windows.set(key, entry);
      while (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    }
    if (entry.count >= limit) return { allowed: false, count: entry.count, resetInMs: entry.endsAt - now };
    entry.count++;
    return { allowed: true, count: entry.count, resetInMs: entry.endsAt - now };
  }
}

const embedded = new WeakMap<StateBackend, ActionLimiter>();

/** The limiter of a state backend: Redis, or one embedded twin per in-memory backend. */
export function actionLimiterFor(state: StateBackend): ActionLimiter {
  let limiter = embedded.get(state);
  if (!limiter) {
    limiter = state.kind === 'redis' ? new RedisActionLimiter(state.redis) : new MemoryActionLimiter();
    embedded.set(state, limiter);
  }
  return limiter;
}
