// One conformance suite for the separate-password-mail memory, run against the embedded twin and
// real Redis (MAILMOAT_TEST_REDIS_URL, a key prefix unique to the run, keys removed afterwards).
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import {
  MAX_PER_KIND,
  MemoryPasswordMemory,
  PasswordMemoryUnavailable,
  recipientHash,
  RedisPasswordMemory,
  type PasswordMemory,
} from '../../src/state/password-memory.js';
import type { RedisClient } from '../../src/state/index.js';
import { freePort } from '../helpers/global.js';
import { keysWithPrefix, removePrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';

const HOUR = 3_600_000;
const rcpt = [recipientHash('Sato@Partner.test')];

function conformance(name: string, make: (now: () => number) => Promise<{ memory: PasswordMemory; raw?: () => Promise<string[]>; done: () => Promise<void> }>) {
  describe(`password memory conformance: ${name}`, () => {
    let clock = 1_700_000_000_000;
    let env: Awaited<ReturnType<typeof make>>;
    beforeEach(async () => (env = await make(() => clock)));
    afterEach(async () => env.done());

    it('remembers held items and password mails per sender (any case), newest first', async () => {
      await env.memory.rememberHeld('Taro@Internal.test', { id: 'A', rcpt, at: clock - 2000, tries: 0 }, HOUR);
      await env.memory.rememberHeld('taro@internal.test', { id: 'B', rcpt, at: clock - 1000, tries: 0 }, HOUR);
      await env.memory.rememberPasswords('taro@internal.test', { mailId: 'P', rcpt, at: clock, passwords: ['Kx7#p2mQ', '2021'] }, HOUR);
      const got = await env.memory.lookup('TARO@internal.test', HOUR);
      assert.deepEqual(
        got.held.map((h) => h.id),
        ['B', 'A'],
      );
      assert.deepEqual(got.passwords, [{ mailId: 'P', rcpt, at: clock, passwords: ['Kx7#p2mQ', '2021'] }]);
      assert.deepEqual(await env.memory.lookup('hanako@internal.test', HOUR), { held: [], passwords: [] });
    });

    it('a record older than the wait is not returned', async () => {
      await env.memory.rememberHeld('taro@internal.test', { id: 'old', rcpt, at: clock, tries: 0 }, HOUR);
      clock += HOUR + 1;
      assert.deepEqual((await env.memory.lookup('taro@internal.test', HOUR)).held, []);
    });

    it('a held item remembered again keeps its place and counts its tries; forgetHeld removes it', async () => {
      await env.memory.rememberHeld('taro@internal.test', { id: 'A', rcpt, at: clock, tries: 0 }, HOUR);
      await env.memory.rememberHeld('taro@internal.test', { id: 'A', rcpt, at: clock, tries: 2 }, HOUR);
      assert.deepEqual((await env.memory.lookup('taro@internal.test', HOUR)).held, [{ id: 'A', rcpt, at: clock, tries: 2 }]);
      await env.memory.forgetHeld('taro@internal.test', 'A');
      assert.deepEqual((await env.memory.lookup('taro@internal.test', HOUR)).held, []);
    });

    it(`keeps the newest ${MAX_PER_KIND} of each kind per sender`, async () => {
      for (let i = 0; i < MAX_PER_KIND + 5; i++) {
        await env.memory.rememberHeld('taro@internal.test', { id: `H${i}`, rcpt, at: clock + i, tries: 0 }, HOUR);
        await env.memory.rememberPasswords('taro@internal.test', { mailId: `P${i}`, rcpt, at: clock + i, passwords: [`pw${i}`] }, HOUR);
      }
      const got = await env.memory.lookup('taro@internal.test', HOUR);
      assert.equal(got.held.length, MAX_PER_KIND);
      assert.equal(got.passwords.length, MAX_PER_KIND);
      assert.equal(got.held[0].id, `H${MAX_PER_KIND + 4}`);
      assert.ok(!got.held.some((h) => h.id === 'H0'));
    });

    if (name === 'redis') {
      it('stores no address in clear: the sender key and the recipients are hashes', async () => {
        await env.memory.rememberHeld('taro@internal.test', { id: 'A', rcpt, at: clock, tries: 0 }, HOUR);
        const raw = await env.raw!();
        assert.ok(raw.length > 0);
        for (const value of raw) assert.ok(!/taro|sato|@/i.test(value), value);
      });
    }
  });
}

conformance('embedded', async (now) => ({ memory: new MemoryPasswordMemory(1000, now), done: async () => undefined }));

let redis: RedisClient;
let prefix: string;
conformance('redis', async (now) => {
  redis ??= await testRedis();
  prefix = uniquePrefix();
  return {
    memory: new RedisPasswordMemory(redis, prefix, now),
    raw: async () => {
      const keys = await keysWithPrefix(redis, prefix);
      const values = await Promise.all(keys.map((k) => redis.hgetall(k)));
      return [...keys, ...values.flatMap((v) => Object.entries(v).flat())];
    },
    done: () => removePrefix(redis, prefix),
  };
});

describe('password memory: bounds and failures', () => {
  after(() => redis?.disconnect());

  it('the embedded twin keeps at most maxSenders senders, the least recently written dropped', async () => {
    const memory = new MemoryPasswordMemory(3);
    for (let i = 0; i < 5; i++) await memory.rememberHeld(`s${i}@x.test`, { id: `H${i}`, rcpt, at: Date.now(), tries: 0 }, HOUR);
    assert.deepEqual((await memory.lookup('s0@x.test', HOUR)).held, []);
    assert.equal((await memory.lookup('s4@x.test', HOUR)).held.length, 1);
  });

  it('Redis down: PasswordMemoryUnavailable, at once', async () => {
    const down = new Redis({ port: await freePort(), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => undefined);
    await down.connect().catch(() => undefined);
    const memory = new RedisPasswordMemory(down, uniquePrefix());
    await assert.rejects(memory.lookup('taro@internal.test', HOUR), PasswordMemoryUnavailable);
    await assert.rejects(memory.rememberHeld('taro@internal.test', { id: 'A', rcpt, at: 1, tries: 0 }, HOUR), PasswordMemoryUnavailable);
    down.disconnect();
  });
});
