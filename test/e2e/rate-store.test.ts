// The sender-rate conformance suite: the same cases against real Redis (the Lua script) and the
// embedded in-memory twin. Windows are short (time comes from Redis TIME, nothing is injected).
import assert from 'node:assert/strict';
import { MemoryRateStore } from '../../src/rate/memory-store.js';
import { planFor, type Plan } from '../../src/rate/plan.js';
import { RedisRateStore } from '../../src/rate/redis-store.js';
import { EMPTY_SAMPLE, subject, type RateSample, type RateStore } from '../../src/rate/store.js';
import type { RedisClient } from '../../src/state/index.js';
import { keysWithPrefix, privateRedis, ratePolicy, removePrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const office: RateSample = { ...EMPTY_SAMPLE, office: true };
const to = (...rcpts: string[]): RateSample => ({ ...EMPTY_SAMPLE, externalRecipients: rcpts });

interface Backend {
  name: string;
  make(): Promise<RateStore>;
  /** keys the backend still holds under the prefix (expired ones gone) */
  keys(store: RateStore, prefix: string): Promise<string[]>;
  /** every key under the prefix has a TTL */
  allExpire?(prefix: string): Promise<boolean>;
  done(prefix: string): Promise<void>;
}

let redis: RedisClient;
const backends: Backend[] = [
  {
    name: 'redis',
    make: async () => new RedisRateStore(redis),
    keys: async (_s, prefix) => keysWithPrefix(redis, prefix),
    allExpire: async (prefix) => {
      const keys = await keysWithPrefix(redis, prefix);
      const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
      return keys.length > 0 && ttls.every((t) => t > 0);
    },
    done: (prefix) => removePrefix(redis, prefix),
  },
  {
    name: 'memory',
    make: async () => new MemoryRateStore(),
    keys: async (s, prefix) => (s as MemoryRateStore).keys().filter((k) => k.startsWith(prefix)),
    done: async () => undefined,
  },
];

before(async () => {
  redis = await testRedis();
});
after(async () => {
  await redis.quit();
});

for (const backend of backends) {
  describe(`sender-rate store conformance: ${backend.name}`, function () {
    let prefix: string;
    let store: RateStore;
    beforeEach(async () => {
      prefix = uniquePrefix();
      store = await backend.make();
    });
    afterEach(async () => {
      (store as MemoryRateStore).close?.();
      await backend.done(prefix);
    });

    function plan(overrides: string[]): Plan {
      return planFor(ratePolicy([`rate.keyPrefix="${prefix}"`, 'rate.baseline.action=null', ...overrides]).rate);
    }

    it('a threshold fires for the message that takes the count past the limit, not before', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[{metric: office, window: 1h, limit: 3, action: quarantine}]']);
      const s = subject('sender', 'alice@corp.test');
      for (let i = 1; i <= 3; i++) {
        const [r] = await store.record([s], office, p);
        assert.deepEqual(r.fired, [], `message ${i}`);
        assert.equal(r.counts[0][2], i);
      }
      const [r4] = await store.record([s], office, p);
      assert.deepEqual(r4.fired, [0]);
      assert.equal(r4.committed, true, 'quarantine accepts the message, so it counts');
      // a message without an Office attachment does not add to the metric, so it does not fire
      const [plain] = await store.record([s], EMPTY_SAMPLE, p);
      assert.deepEqual(plain.fired, []);
      assert.deepEqual(plain.counts[0].slice(0, 3), [5, 0, 4]);
    });

    it('a blocking (defer) threshold does not count the deferred message and sets a hold', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[{metric: messages, window: 1h, limit: 2, action: defer}]']);
      const s = subject('sender', 'bob@corp.test');
      await store.record([s], EMPTY_SAMPLE, p);
      await store.record([s], EMPTY_SAMPLE, p);
      const [third] = await store.record([s], EMPTY_SAMPLE, p);
      assert.deepEqual(third.fired, [0]);
      assert.equal(third.committed, false);
      const [peek] = await store.peek([s], p);
      assert.equal(peek.counts[0][0], 2, 'the deferred message was not counted');
      const [status] = await store.status([s], p);
      assert.match(status.hold!, /^RATE_MESSAGES\|3\|2\|3600000$/);
      assert.equal(status.suspended, null);
    });

    it('windows slide: old messages stop counting', async function () {
      this.timeout(10000);
      const p = plan(['rate.windows=[1s]', 'rate.thresholds=[{metric: messages, window: 1s, limit: 2, action: tag}]']);
      const s = subject('sender', 'carol@corp.test');
      for (let i = 0; i < 2; i++) await store.record([s], EMPTY_SAMPLE, p);
      const [over] = await store.record([s], EMPTY_SAMPLE, p);
      assert.deepEqual(over.fired, [0]);
      await sleep(1250);
      const [later] = await store.record([s], EMPTY_SAMPLE, p);
      assert.deepEqual(later.fired, []);
      assert.equal(later.counts[0][0], 1);
    });

    it('counts distinct external recipients, each once per window', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[{metric: externalRecipients, window: 1h, limit: 2, action: alert}]']);
      const s = subject('sender', 'dave@corp.test');
      assert.deepEqual((await store.record([s], to('a@x.test', 'b@x.test'), p))[0].fired, []);
      const [again] = await store.record([s], to('a@x.test'), p);
      assert.equal(again.counts[0][1], 2);
      assert.deepEqual(again.fired, []);
      const [third] = await store.record([s], to('c@x.test'), p);
      assert.equal(third.counts[0][1], 3);
      assert.deepEqual(third.fired, [0]);
    });

    it('distinct recipients are capped (memory stays bounded)', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.distinctCap=5', 'rate.thresholds=[]']);
      const s = subject('sender', 'erin@corp.test');
      const many = Array.from({ length: 12 }, (_, i) => `r${i}@x.test`);
      await store.record([s], to(...many), p);
      const [peek] = await store.peek([s], p);
      assert.equal(peek.counts[0][1], 5);
    });

    it('baseline: fires for a sender whose external recipients jump, not for one that is steadily high', async function () {
      this.timeout(30000);
      const period = 400;
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[]', `rate.baseline={action: alert, period: ${period}, halfLife: 2s, factor: 3, floor: 4}`]);
      const steady = subject('sender', 'steady@corp.test');
      const jumpy = subject('sender', 'jumpy@corp.test');
      const fired: Record<string, number[]> = { steady: [], jumpy: [] };
      let n = 0;
      const batch = (k: number) => Array.from({ length: k }, () => `r${n++}@x.test`);
      for (let round = 0; round < 7; round++) {
        // wait for the start of the next period, then send within it
        await sleep(period - (Date.now() % period) + 20);
        const [st] = await store.record([steady], to(...batch(8)), p);
        if (st.fired.includes(-1)) fired.steady.push(round);
        const [ju] = await store.record([jumpy], to(...batch(round === 6 ? 30 : 2)), p);
        if (ju.fired.includes(-1)) fired.jumpy.push(round);
      }
      // a new sender is judged by the floor only: 8 > 4 fires in its first period, then its own average holds
      assert.deepEqual(fired.steady, [0]);
      assert.deepEqual(fired.jumpy, [6]);
      const [peek] = await store.peek([steady], p);
      assert.ok(peek.baseline.average > 6 && peek.baseline.average <= 8, `steady average ${peek.baseline.average}`);
    });

    it('every key expires: idle senders vanish', async function () {
      this.timeout(10000);
      const p = plan(['rate.windows=[300ms, 600ms]', 'rate.thresholds=[]', 'rate.baseline={action: alert, period: 200ms, halfLife: 100ms}']);
      await store.record([subject('sender', 'frank@corp.test'), subject('ip', '10.0.0.9')], { ...office, externalRecipients: ['z@x.test'] }, p);
      assert.ok((await backend.keys(store, prefix)).length >= 4);
      if (backend.allExpire) assert.ok(await backend.allExpire(prefix), 'every key has a TTL');
      await sleep(1000);
      assert.deepEqual(await backend.keys(store, prefix), []);
    });

    it('a suspension holds the sender (not counted) until it is lifted', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[{metric: fromMismatch, window: 1h, limit: 1, action: suspend}]']);
      const s = subject('sender', 'gina@corp.test');
      const mismatch = { ...EMPTY_SAMPLE, fromMismatch: true };
      await store.record([s], mismatch, p);
      const [r] = await store.record([s], mismatch, p);
      assert.deepEqual(r.fired, [0]);
      assert.match(r.suspended!, /^RATE_FROM_MISMATCH\|\d+\|2 > 1 in 3600000ms$/);
      assert.equal(r.committed, false, 'suspend.action defer: the message is deferred, not counted');
      const [next] = await store.record([s], EMPTY_SAMPLE, p);
      assert.equal(next.committed, false);
      assert.ok((await store.status([s], p))[0].suspended);
      assert.equal(await store.unsuspend(s, p), true);
      assert.equal((await store.status([s], p))[0].suspended, null);
      assert.equal((await store.record([s], EMPTY_SAMPLE, p))[0].committed, true);
      await store.suspend(s, 'by hand', p);
      assert.match((await store.status([s], p))[0].suspended!, /^MANUAL\|\d+\|by hand$/);
    });

    it('concurrent messages never overshoot a blocking limit (atomic check-and-update)', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[{metric: messages, window: 1h, limit: 20, action: defer}]']);
      const s = subject('sender', 'hank@corp.test');
      const results = await Promise.all(Array.from({ length: 50 }, () => store.record([s], EMPTY_SAMPLE, p)));
      assert.equal(results.filter(([r]) => r.committed).length, 20);
      assert.equal((await store.peek([s], p))[0].counts[0][0], 20);
    });

    it('lists the subjects active in a window', async () => {
      const p = plan(['rate.windows=[1h]', 'rate.thresholds=[]']);
      await store.record([subject('sender', 'ivy@corp.test'), subject('ip', '10.1.2.3')], EMPTY_SAMPLE, p);
      assert.deepEqual((await store.subjects(p, 3_600_000)).sort(), ['ip:10.1.2.3', 'sender:ivy@corp.test']);
    });
  });
}

describe('sender-rate store: Redis specifics', function () {
  let prefix: string;
  beforeEach(() => (prefix = uniquePrefix()));
  afterEach(() => removePrefix(redis, prefix));

  it('reloads the script after SCRIPT FLUSH (NOSCRIPT) and uses one round trip per message', async () => {
    // a private server: flushing the shared one's script cache would disturb other suites
    const server = await privateRedis();
    const own = await testRedis(server.url);
    after(async () => {
      own.disconnect();
      await server.stop();
    });
    const store = new RedisRateStore(own);
    const p = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
    const s = [subject('sender', 'a@corp.test'), subject('from', 'b@corp.test')];
    await store.record(s, office, p);
    await own.script('FLUSH');
    const before = store.roundTrips;
    const [r] = await store.record(s, office, p);
    assert.equal(r.counts[0][2], 2);
    assert.equal(store.roundTrips - before, 2, 'NOSCRIPT costs one extra round trip');
    const loaded = store.roundTrips;
    await store.record(s, office, p);
    assert.equal(store.roundTrips - loaded, 1, 'two subjects, one pipeline');
  });

  it('keys of one subject share a hash tag (one Cluster slot)', async () => {
    const store = new RedisRateStore(redis);
    const p = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
    await store.record([subject('sender', 'tag@corp.test')], { ...office, externalRecipients: ['x@y.test'] }, p);
    const keys = await keysWithPrefix(redis, prefix);
    assert.ok(keys.length >= 4);
    assert.ok(
      keys.every((k) => k.startsWith(`${prefix}{sender:tag@corp.test}:`)),
      keys.join(),
    );
    const slots = new Set(await Promise.all(keys.map((k) => redis.call('CLUSTER', 'KEYSLOT', k).catch(() => k.slice(0, k.indexOf('}'))))));
    assert.equal(slots.size, 1);
  });
});
