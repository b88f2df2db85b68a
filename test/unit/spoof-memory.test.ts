// One conformance suite for the thread memory, run against the embedded twin and real Redis
// (MAILMOAT_TEST_REDIS_URL, unique key prefix, keys removed afterwards).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  MAX_ADDRESS_INFRASTRUCTURE,
  MAX_DOMAIN_INFRASTRUCTURE,
  MAX_KNOWN_DOMAINS,
  MAX_NAME_ADDRESSES,
  MemoryThreadMemory,
  RedisThreadMemory,
  ThreadMemoryUnavailable,
  type ThreadMemory,
  type ThreadRecord,
} from '../../src/state/thread-memory.js';
import { freePort } from '../helpers/global.js';

const record = { from: { address: 'alice@example.com', names: ['alice walker'] }, to: [{ address: 'bob@partner.example', names: ['bob smith'] }], at: 1 };
const update = {
  threads: [{ messageId: 'Orig-1@mail.example.com', record }],
  bindings: [{ address: 'bob@partner.example', name: 'bob smith' }],
  addresses: ['bob@partner.example'],
  domains: ['partner.example'],
  infrastructure: [{ address: 'bob@partner.example', domain: 'partner.example', tokens: ['net:198.51.100.0/24', 'env:partner.example'] }],
};

function conformance(name: string, make: () => Promise<{ memory: ThreadMemory; advance?: (ms: number) => Promise<void>; done: () => Promise<void> }>) {
  describe(`thread memory conformance: ${name}`, () => {
    let env: Awaited<ReturnType<typeof make>>;
    beforeEach(async () => (env = await make()));
    afterEach(async () => env.done());

    it('remembers a thread by Message-ID (case-insensitive) with its participants', async () => {
      await env.memory.update(update, 60_000);
      const facts = await env.memory.lookup({
        messageIds: ['other@x', 'orig-1@MAIL.example.com'],
        names: [],
        address: 'bob@partner.example',
        domain: 'partner.example',
      });
      assert.deepEqual(facts.threads, [record]);
      assert.equal(facts.addressKnown, true);
      assert.equal(facts.domainKnown, true);
    });

    it('binds names to addresses and answers unknowns as unknown', async () => {
      await env.memory.update(update, 60_000);
      await env.memory.update(
        { threads: [], bindings: [{ address: 'bob.smith@gmail.example', name: 'bob smith' }], addresses: [], domains: [], infrastructure: [] },
        60_000,
      );
      const facts = await env.memory.lookup({ messageIds: [], names: ['bob smith'], address: 'kurt@hacked.example', domain: 'hacked.example' });
      assert.deepEqual(facts.nameAddresses.sort(), ['bob.smith@gmail.example', 'bob@partner.example']);
      assert.equal(facts.addressKnown, false);
      assert.equal(facts.domainKnown, false);
      assert.deepEqual((await env.memory.lookup({ messageIds: ['nope@x'], names: ['nobody here'], address: 'a@b.example', domain: 'b.example' })).threads, []);
    });

    it(`keeps at most ${MAX_NAME_ADDRESSES} addresses per name, the most recently seen`, async () => {
      for (let i = 0; i < MAX_NAME_ADDRESSES + 8; i++) {
        await env.memory.update(
          { threads: [], bindings: [{ address: `bob${i}@spam${i}.example`, name: 'bob smith' }], addresses: [], domains: [], infrastructure: [] },
          60_000,
        );
        await new Promise((r) => setTimeout(r, 2));
      }
      const facts = await env.memory.lookup({ messageIds: [], names: ['bob smith'], address: 'x@y.example', domain: 'y.example' });
      assert.equal(facts.nameAddresses.length, MAX_NAME_ADDRESSES);
      assert.ok(facts.nameAddresses.includes(`bob${MAX_NAME_ADDRESSES + 7}@spam${MAX_NAME_ADDRESSES + 7}.example`));
      assert.ok(!facts.nameAddresses.includes('bob0@spam0.example'));
    });

    it('looks a person up by every written form of the name: the addresses of all its keys', async () => {
      await env.memory.update(
        {
          threads: [],
          bindings: [
            { address: 'kenta@torihiki.co.jp', name: '長谷川健太' },
            { address: 'kenta@torihiki.co.jp', name: 'hasegawa kenta' },
            { address: 'k.hasegawa@torihiki-group.example', name: 'hasegawa kenta' },
          ],
          addresses: [],
          domains: [],
          infrastructure: [],
        },
        60_000,
      );
      const kanji = await env.memory.lookup({ messageIds: [], names: ['長谷川健太'], address: 'kurt@hacked.example', domain: 'hacked.example' });
      assert.deepEqual(kanji.nameAddresses, ['kenta@torihiki.co.jp']);
      const both = await env.memory.lookup({
        messageIds: [],
        names: ['長谷川健太', 'hasegawa kenta'],
        address: 'kurt@hacked.example',
        domain: 'hacked.example',
      });
      assert.deepEqual(both.nameAddresses.sort(), ['k.hasegawa@torihiki-group.example', 'kenta@torihiki.co.jp']);
    });

    it('reads thread records written before name keys (one normalised name per person)', async () => {
      const old = { from: { address: 'alice@example.com', name: 'alice walker' }, to: [{ address: 'bob@partner.example', name: '' }], at: 5 };
      await env.memory.update(
        { threads: [{ messageId: 'old@x', record: old as unknown as ThreadRecord }], bindings: [], addresses: [], domains: [], infrastructure: [] },
        60_000,
      );
      const facts = await env.memory.lookup({ messageIds: ['old@x'], names: [], address: 'bob@partner.example', domain: 'partner.example' });
      assert.deepEqual(facts.threads, [
        { from: { address: 'alice@example.com', names: ['alice walker'] }, to: [{ address: 'bob@partner.example', names: [] }], at: 5 },
      ]);
    });

    it('learns the infrastructure of genuine mail per sender address and per domain', async () => {
      await env.memory.update(update, 60_000);
      await env.memory.update(
        {
          threads: [],
          bindings: [],
          addresses: [],
          domains: [],
          infrastructure: [
            { address: 'dan@partner.example', domain: 'partner.example', tokens: ['net:198.51.100.0/24', 'dkim:partner.example', 'dkim:partner.example'] },
          ],
        },
        60_000,
      );
      const bob = await env.memory.lookup({ messageIds: [], names: [], address: 'bob@partner.example', domain: 'partner.example' });
      assert.deepEqual(bob.infrastructure.address.sort(), ['env:partner.example', 'net:198.51.100.0/24']);
      assert.deepEqual(bob.infrastructure.domain.sort(), ['dkim:partner.example', 'env:partner.example', 'net:198.51.100.0/24']);
      const stranger = await env.memory.lookup({ messageIds: [], names: [], address: 'eve@partner.example', domain: 'partner.example' });
      assert.deepEqual(stranger.infrastructure.address, []);
      assert.equal(stranger.infrastructure.domain.length, 3);
    });

    it('a token nothing vouched for is learned for its domain on its second sighting only, and never for an address', async () => {
      const sighting = (tokens: string[]) => ({
        threads: [],
        bindings: [],
        addresses: [],
        domains: [],
        infrastructure: [{ address: 'billing@kobo.example', domain: 'kobo.example', tokens, learn: 'second-sighting' as const }],
      });
      const look = () => env.memory.lookup({ messageIds: [], names: [], address: 'billing@kobo.example', domain: 'kobo.example' });
      await env.memory.update(sighting(['env:esp-mailer.example']), 60_000);
      assert.deepEqual((await look()).infrastructure, { address: [], domain: [] });
      await env.memory.update(sighting(['env:other-esp.example']), 60_000);
      assert.deepEqual((await look()).infrastructure, { address: [], domain: [] });
      await env.memory.update(sighting(['env:esp-mailer.example']), 60_000);
      assert.deepEqual(await look().then((f) => f.infrastructure), { address: [], domain: ['env:esp-mailer.example'] });
      // another domain's sightings count for nothing here
      await env.memory.update(
        { ...sighting([]), infrastructure: [{ address: '', domain: 'partner.example', tokens: ['env:other-esp.example'], learn: 'second-sighting' }] },
        60_000,
      );
      assert.deepEqual((await look()).infrastructure.domain, ['env:esp-mailer.example']);
    });

    it('forgets the named tokens of an address and a domain (and its unconfirmed sightings), nothing else', async () => {
      const learn = (address: string, domain: string, tokens: string[], how?: 'second-sighting') => ({
        threads: [],
        bindings: [],
        addresses: [],
        domains: [],
        infrastructure: [{ address, domain, tokens, ...(how ? { learn: how } : {}) }],
      });
      await env.memory.update(learn('bob@trusted.example', 'trusted.example', ['net:198.18.0.0/24', 'env:esp.example', 'net:198.51.100.0/24']), 60_000);
      await env.memory.update(learn('dan@trusted.example', 'trusted.example', ['net:198.18.0.0/24']), 60_000);
      await env.memory.update(learn('', 'trusted.example', ['env:esp.example'], 'second-sighting'), 60_000);
      await env.memory.forgetInfrastructure({ address: 'bob@trusted.example', domain: 'trusted.example', tokens: ['net:198.18.0.0/24', 'env:esp.example'] });
      const bob = await env.memory.lookup({ messageIds: [], names: [], address: 'bob@trusted.example', domain: 'trusted.example' });
      assert.deepEqual(bob.infrastructure, { address: ['net:198.51.100.0/24'], domain: ['net:198.51.100.0/24'] });
      const dan = await env.memory.lookup({ messageIds: [], names: [], address: 'dan@trusted.example', domain: 'trusted.example' });
      assert.deepEqual(dan.infrastructure.address, ['net:198.18.0.0/24'], "another address's own tokens stay");
      // the forgotten sighting does not count: one more sighting is a first one again
      await env.memory.update(learn('', 'trusted.example', ['env:esp.example'], 'second-sighting'), 60_000);
      assert.ok(
        !(await env.memory.lookup({ messageIds: [], names: [], address: '', domain: 'trusted.example' })).infrastructure.domain.includes('env:esp.example'),
      );
    });

    it(`keeps at most ${MAX_ADDRESS_INFRASTRUCTURE} tokens per address and ${MAX_DOMAIN_INFRASTRUCTURE} per domain, the most recently seen`, async () => {
      for (let i = 0; i < MAX_DOMAIN_INFRASTRUCTURE + 4; i++) {
        const tokens = [`net:10.${i}.0.0/24`, ...(i % 8 === 0 ? ['env:partner.example'] : [])];
        await env.memory.update(
          { threads: [], bindings: [], addresses: [], domains: [], infrastructure: [{ address: 'bob@partner.example', domain: 'partner.example', tokens }] },
          60_000,
        );
        await new Promise((r) => setTimeout(r, 2));
      }
      const facts = await env.memory.lookup({ messageIds: [], names: [], address: 'bob@partner.example', domain: 'partner.example' });
      assert.equal(facts.infrastructure.address.length, MAX_ADDRESS_INFRASTRUCTURE);
      assert.equal(facts.infrastructure.domain.length, MAX_DOMAIN_INFRASTRUCTURE);
      assert.ok(facts.infrastructure.address.includes(`net:10.${MAX_DOMAIN_INFRASTRUCTURE + 3}.0.0/24`));
      assert.ok(!facts.infrastructure.address.includes('net:10.0.0.0/24'));
      // seen again and again, the envelope organisation stays while older networks go
      assert.ok(facts.infrastructure.address.includes('env:partner.example'));
    });

    it('forgets after the TTL', async () => {
      await env.memory.update(update, 50);
      await (env.advance ? env.advance(100) : new Promise((r) => setTimeout(r, 120)));
      const facts = await env.memory.lookup({
        messageIds: ['orig-1@mail.example.com'],
        names: ['bob smith'],
        address: 'bob@partner.example',
        domain: 'partner.example',
      });
      assert.deepEqual(facts, { threads: [], nameAddresses: [], addressKnown: false, domainKnown: false, infrastructure: { address: [], domain: [] } });
    });

    it('lists the known correspondent domains with when each is forgotten; an incremental read gives what was learned since', async () => {
      await env.memory.update(update, 60_000);
      const first = await env.memory.knownDomains();
      assert.deepEqual(
        first.map((d) => d.domain),
        ['partner.example'],
      );
      await (env.advance ? env.advance(10) : new Promise((r) => setTimeout(r, 10)));
      await env.memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains: ['Torihiki.co.jp', 'partner.example'] }, 60_000);
      const later = await env.memory.knownDomains(first[0].expires);
      assert.deepEqual(later.map((d) => d.domain).sort(), ['partner.example', 'torihiki.co.jp']);
      assert.equal(later.find((d) => d.domain === 'partner.example')!.expires - first[0].expires >= 10, true, 'seen again: remembered longer');
      await env.memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains: ['short.example'] }, 50);
      await (env.advance ? env.advance(100) : new Promise((r) => setTimeout(r, 120)));
      assert.deepEqual((await env.memory.knownDomains()).map((d) => d.domain).sort(), ['partner.example', 'torihiki.co.jp']);
    });

    it(`keeps at most ${MAX_KNOWN_DOMAINS} known domains, the most recently seen`, async () => {
      const many = Array.from({ length: MAX_KNOWN_DOMAINS + 10 }, (_, i) => `corp${i}.example`);
      await env.memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains: many }, 60_000);
      await (env.advance ? env.advance(10) : new Promise((r) => setTimeout(r, 10)));
      await env.memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains: ['newest.example'] }, 60_000);
      const listed = await env.memory.knownDomains();
      assert.equal(listed.length, MAX_KNOWN_DOMAINS);
      assert.ok(listed.some((d) => d.domain === 'newest.example'));
    });

    it('an empty update and an empty lookup are fine', async () => {
      await env.memory.update({ threads: [], bindings: [], addresses: [], domains: [], infrastructure: [] }, 1000);
      assert.deepEqual(await env.memory.lookup({ messageIds: [], names: [], address: '', domain: '' }), {
        threads: [],
        nameAddresses: [],
        addressKnown: false,
        domainKnown: false,
        infrastructure: { address: [], domain: [] },
      });
    });
  });
}

conformance('in-memory twin', async () => {
  let now = 1_000_000;
  return { memory: new MemoryThreadMemory(1000, () => now), advance: async (ms) => void (now += ms), done: async () => undefined };
});

conformance('redis', async () => {
  const redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false });
  await redis.connect();
  const prefix = `test:thread:${randomBytes(6).toString('hex')}:`;
  return {
    memory: new RedisThreadMemory(redis, prefix),
    done: async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    },
  };
});

describe('thread memory: redis specifics', () => {
  it('keys are hashed (no address or Message-ID in clear) and carry TTLs; one round trip each way', async () => {
    const redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false });
    await redis.connect();
    const prefix = `test:thread:${randomBytes(6).toString('hex')}:`;
    try {
      let roundTrips = 0;
      const original = redis.pipeline.bind(redis);
      (redis as unknown as { pipeline: typeof redis.pipeline }).pipeline = (...args: Parameters<typeof redis.pipeline>) => (roundTrips++, original(...args));
      const memory = new RedisThreadMemory(redis, prefix);
      await memory.update(update, 60_000);
      await memory.lookup({
        messageIds: ['orig-1@mail.example.com', 'b@x', 'c@x'],
        names: ['bob smith'],
        address: 'bob@partner.example',
        domain: 'partner.example',
      });
      assert.equal(roundTrips, 2);
      const keys = await redis.keys(`${prefix}*`);
      assert.equal(keys.length, 7);
      // the one key that is not hashed: the lookalike check's list of correspondent domains (it needs the names)
      const list = `${prefix}domains`;
      assert.ok(keys.includes(list));
      assert.deepEqual(await redis.zrange(list, '0', '-1'), ['partner.example']);
      for (const key of keys.filter((k) => k !== list)) assert.doesNotMatch(key, /partner|example|orig/);
      for (const key of keys) {
        const ttl = await redis.pttl(key);
        assert.ok(ttl > 0 && ttl <= 60_000, `${key} ttl ${ttl}`);
      }
      await redis.del(...keys);
    } finally {
      await redis.quit();
    }
  });

  it('Redis down: ThreadMemoryUnavailable at once, never a hang', async () => {
    const redis = new Redis(`redis://127.0.0.1:${await freePort()}`, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    await redis.connect().catch(() => undefined);
    const memory = new RedisThreadMemory(redis, 'x:');
    const started = Date.now();
    await assert.rejects(memory.lookup({ messageIds: ['a@b'], names: [], address: 'a@b.example', domain: 'b.example' }), ThreadMemoryUnavailable);
    await assert.rejects(memory.update(update, 1000), ThreadMemoryUnavailable);
    assert.ok(Date.now() - started < 1500);
    redis.disconnect();
  });
});
