// What the lookalike check costs with a large correspondent list: MAX_KNOWN_DOMAINS (or KNOWN=n) synthetic
// domains written to Redis, read whole into the per-process index (as a gateway does at start and
// every 10 minutes), then one lookalike check per sender for a mix of lookalikes and unrelated
// senders. `npm run bench:lookalike` (needs Redis at MAILMOAT_TEST_REDIS_URL or 127.0.0.1:6379).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { knownDomains } from '../../src/inspect/spoof/known-domains.js';
import { lookalikeOf } from '../../src/inspect/spoof/lookalike-signal.js';
import { MAX_KNOWN_DOMAINS, RedisThreadMemory } from '../../src/state/thread-memory.js';
import { lookalikeFamily } from '../fixtures/lookalike.js';
import { testPolicy } from '../fixtures/mail/run.js';

const CONSONANTS = 'bcdfghjklmnprstvwyz';
const VOWELS = 'aeiou';
const SUFFIXES = ['com', 'co.jp', 'jp', 'net', 'ne.jp', 'de', 'co.uk', 'or.jp'];

/** Deterministic pseudo-random names (synthetic: real names are words and abbreviations), so runs compare. */
function* names(count: number): Generator<string> {
  let seed = 42;
  const next = () => {
    // mulberry32: 32-bit integer arithmetic, no precision lost in doubles
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  const seen = new Set<string>();
  while (seen.size < count) {
    // pronounceable names of 4 to 14 letters, a few of them two words joined by a hyphen
    const word = () => {
      let w = '';
      const length = 4 + (next() % 8);
      for (let i = 0; i < length; i++) w += i % 2 ? VOWELS[next() % VOWELS.length] : CONSONANTS[next() % CONSONANTS.length];
      return w;
    };
    const label = next() % 8 ? word() : `${word()}-${word().slice(0, 3)}`;
    const domain = `${label}.${SUFFIXES[next() % SUFFIXES.length]}`;
    if (!seen.has(domain)) {
      seen.add(domain);
      yield domain;
    }
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, enableOfflineQueue: false });
  await redis.connect();
  const prefix = `bench:lookalike:${randomBytes(4).toString('hex')}:`;
  try {
    const memory = new RedisThreadMemory(redis, prefix, 10_000);
    const total = Number(process.env.KNOWN ?? MAX_KNOWN_DOMAINS);
    const domains = [...names(total)];
    for (let i = 0; i < domains.length; i += 5000) {
      await memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains: domains.slice(i, i + 5000) }, 86_400_000);
    }
    const heap = process.memoryUsage().heapUsed;
    let t = process.hrtime.bigint();
    const known = await knownDomains(memory);
    const readMs = Number(process.hrtime.bigint() - t) / 1e6;
    const heapMb = (process.memoryUsage().heapUsed - heap) / 1024 / 1024;
    const policy = testPolicy();
    const lookalikes = domains.slice(0, 200).flatMap((d) => {
      const family = lookalikeFamily(d);
      return Array.from({ length: 10 }, (_, i) => family[Math.floor((i * family.length) / 10)].domain); // across the kinds
    });
    const strangers = [...names(total + 2000)].slice(total); // new senders unrelated to any known one
    const senders = [...lookalikes, ...strangers];
    for (const s of senders) lookalikeOf(s, policy, known); // warm up: JIT, and the garbage of the index build collected
    const times: number[] = [];
    const fired = { reply: new Set<string>(), fresh: new Set<string>() };
    for (const s of senders) {
      t = process.hrtime.bigint();
      if (lookalikeOf(s, policy, known, true)) fired.reply.add(s);
      times.push(Number(process.hrtime.bigint() - t) / 1e3);
      if (lookalikeOf(s, policy, known, false)) fired.fresh.add(s);
    }
    const count = (list: string[], set: Set<string>) => list.filter((s) => set.has(s)).length;
    const share = (n: number, d: number) => `${n} of ${d} (${((100 * n) / d).toFixed(1)}%)`;
    times.sort((a, b) => a - b);
    console.log(`${known.index.size} known domains read from Redis and indexed in ${readMs.toFixed(0)} ms (~${heapMb.toFixed(0)} MB heap)`);
    console.log(`${senders.length} senders checked (as in a reply: every rule): p50 ${pct(times, 50).toFixed(1)} µs, p99 ${pct(times, 99).toFixed(1)} µs`);
    console.log(
      `lookalikes (10 across the kinds of each family of 200 known domains) caught in a reply: ${share(count(lookalikes, fired.reply), lookalikes.length)}, in new mail: ${share(count(lookalikes, fired.fresh), lookalikes.length)}`,
    );
    console.log(
      `strangers (random names, denser than real ones) taken for lookalikes in a reply: ${share(count(strangers, fired.reply), strangers.length)}, in new mail: ${share(count(strangers, fired.fresh), strangers.length)}`,
    );
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  }
}

await main();
