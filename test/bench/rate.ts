// Sender-rate benchmark (`npm run bench:rate`): Redis round trips per message, counter updates per
// second against local Redis, Redis memory per 10,000 active senders. Uses MAILMOAT_TEST_REDIS_URL,
// else 127.0.0.1:6379, else a redis-server started for the run. Prints figures; asserts nothing.
import { mochaGlobalSetup, mochaGlobalTeardown } from '../helpers/global.js';
import { MemoryRateStore } from '../../src/rate/memory-store.js';
import { planFor } from '../../src/rate/plan.js';
import { RedisRateStore } from '../../src/rate/redis-store.js';
import { subject, type RateSample, type RateStore } from '../../src/rate/store.js';
import { removePrefix, ratePolicy, testRedis, uniquePrefix } from '../helpers/rate-redis.js';

await mochaGlobalSetup();
const redis = await testRedis();
const prefix = uniquePrefix();
const plan = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate); // the default policy: 3 windows, 4 thresholds, baseline
const sample = (i: number): RateSample => ({
  office: i % 3 === 0,
  fromMismatch: i % 7 === 0,
  macro: false,
  spoof: false,
  externalRecipients: [`r${i % 50}@partner${i % 5}.example`, `x${i}@outside.example`],
});

async function commandStats(): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  return new Map([...info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
}

function line(label: string, value: string): void {
  process.stdout.write(`${label.padEnd(58)} ${value}\n`);
}

try {
  const store = new RedisRateStore(redis);
  await store.record([subject('sender', 'warmup@corp.example')], sample(0), plan); // script cached (EVAL once)

  // 1. round trips per message
  for (const subjects of [[subject('sender', 'a@corp.example')], [subject('sender', 'a@corp.example'), subject('from', 'ceo@corp.example')]]) {
    const n = 1000;
    const trips = store.roundTrips;
    const before = await commandStats();
    for (let i = 0; i < n; i++) await store.record(subjects, sample(i), plan);
    const after = await commandStats();
    const evals = (after.get('evalsha') ?? 0) - (before.get('evalsha') ?? 0);
    line(`round trips per message, ${subjects.length} key(s) (client side)`, ((store.roundTrips - trips) / n).toFixed(2));
    line(`  EVALSHA commands per message (server side)`, (evals / n).toFixed(2));
  }
  line('  + MAIL-time suspension/hold check (MGET), per message', '1 round trip');

  // 2. counter updates per second
  for (const concurrency of [1, 16, 64]) {
    const senders = 10_000;
    const duration = 3000;
    let done = 0;
    const end = Date.now() + duration;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        for (let i = w; Date.now() < end; i += concurrency) {
          await store.record([subject('sender', `u${i % senders}@corp.example`)], sample(i), plan);
          done++;
        }
      }),
    );
    line(`messages/s (one script each), ${concurrency} in flight`, `${Math.round(done / (duration / 1000))}`);
  }
  {
    const mem: RateStore = new MemoryRateStore();
    let done = 0;
    const end = Date.now() + 2000;
    while (Date.now() < end) for (let i = 0; i < 100; i++, done++) await mem.record([subject('sender', `u${done % 10_000}@corp.example`)], sample(done), plan);
    line('messages/s, in-memory backend', `${Math.round(done / 2)}`);
    (mem as MemoryRateStore).close();
  }
  await removePrefix(redis, prefix);

  // 3. memory per 10,000 active senders: one message each (2 external recipients, every 3rd with Office)
  const memPrefix = uniquePrefix();
  const memPlan = planFor(ratePolicy([`rate.keyPrefix="${memPrefix}"`]).rate);
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const keysBefore = await redis.dbsize();
  const before = await used();
  for (let i = 0; i < 10_000; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => store.record([subject('sender', `m${i + j}@corp.example`)], sample(i + j), memPlan)));
  }
  const after = await used();
  const keys = (await redis.dbsize()) - keysBefore;
  line(
    'Redis memory for 10,000 senders (one message each)',
    `${((after - before) / 1024 / 1024).toFixed(1)} MB (${Math.round((after - before) / 10_000)} bytes/sender, ${keys} keys)`,
  );
  // the same senders with 20 messages and 20 distinct external recipients each
  for (let m = 1; m < 20; m++) {
    for (let i = 0; i < 10_000; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, j) =>
          store.record([subject('sender', `m${i + j}@corp.example`)], { ...sample(m), externalRecipients: [`d${m}@outside${(i + j) % 97}.example`] }, memPlan),
        ),
      );
    }
  }
  const busy = await used();
  line(
    '  after 20 messages / 21 distinct recipients each',
    `${((busy - before) / 1024 / 1024).toFixed(1)} MB (${Math.round((busy - before) / 10_000)} bytes/sender)`,
  );
  await removePrefix(redis, memPrefix);
} finally {
  await removePrefix(redis, prefix);
  redis.disconnect();
  await mochaGlobalTeardown();
}
