// DNS the admin chooses (policy `dns`): real name servers on loopback serving a zone of SPF, DKIM
// and DMARC records. The configured server is the one asked; answers are kept within the TTL
// bounds; an unreachable server is AUTH_TEMPERROR within the timeout, and the checks go on.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { getServers } from 'node:dns';
import { dkimSign } from 'mailauth';
import { nameServers, policyResolver } from '../../src/inspect/spoof/dns.js';
import { parsePolicy } from '../../src/policy/load.js';
import { parseNameServer } from '../../src/policy/schema.js';
import { closedDnsPort, startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { policyProblems as problems } from '../helpers/policy.js';
import { runCase, runMessage, symbols, testPolicy } from '../fixtures/mail/run.js';
import { buildMessage, FIXTURE_ZONE, genuine, hijack, PEOPLE } from '../fixtures/mail/threads.js';

const dnsPolicy = (dns: Record<string, unknown>) => testPolicy({ dns }).dns;
const txt = (records: unknown) => (records as string[][]).map((chunks) => chunks.join(''));
const asked = (server: TestDnsServer, name: string, type = 'TXT') => server.questions.filter((q) => q.name === name && q.type === type).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timed<T>(run: () => Promise<T>): Promise<{ value?: T; error?: Error & { code?: string }; ms: number }> {
  const started = Date.now();
  try {
    return { value: await run(), ms: Date.now() - started };
  } catch (error) {
    return { error: error as Error & { code?: string }, ms: Date.now() - started };
  }
}

describe('dns: the servers the policy names', function () {
  let zoneA: TestDnsServer;
  let zoneB: TestDnsServer;
  let silent: TestDnsServer;
  before(async () => {
    zoneA = await startDnsServer(FIXTURE_ZONE);
    zoneB = await startDnsServer({ 'partner.example': { TXT: ['v=spf1 ip4:192.0.2.99 -all'] } });
    silent = await startDnsServer({}, { silent: true });
  });
  after(async () => {
    await Promise.all([zoneA.close(), zoneB.close(), silent.close()]);
  });

  it('asks the configured server and no other', async () => {
    const before = zoneA.questions.length;
    const answer = await policyResolver(dnsPolicy({ servers: [zoneB.address] }))('partner.example', 'TXT');
    assert.deepEqual(txt(answer), ['v=spf1 ip4:192.0.2.99 -all']);
    assert.equal(asked(zoneB, 'partner.example'), 1);
    assert.equal(zoneA.questions.length, before);
  });

  it('asks the servers in turn: a closed port at once, a silent one for its share of dns.timeout', async () => {
    const closed = await closedDnsPort();
    const fast = await timed(() => policyResolver(dnsPolicy({ servers: [closed, zoneA.address], cache: { size: 0 } }))('partner.example', 'TXT'));
    assert.deepEqual(txt(fast.value), ['v=spf1 ip4:198.51.100.10 -all']);
    assert.ok(fast.ms < 200, `${fast.ms} ms`);
    const slow = await timed(() =>
      policyResolver(dnsPolicy({ servers: [silent.address, zoneA.address], timeout: '600ms', cache: { size: 0 } }))('torihiki.co.jp', 'TXT'),
    );
    assert.deepEqual(txt(slow.value), ['v=spf1 ip4:198.51.100.20 -all']);
    assert.ok(slow.ms >= 250 && slow.ms < 600, `${slow.ms} ms: half the timeout on the silent server, then the next`);
    assert.ok(
      silent.questions.some((q) => q.name === 'torihiki.co.jp'),
      'the silent server was asked first',
    );
  });

  it('authentication goes through it: SPF and DMARC of a genuine reply pass, a hijack fails DMARC', async () => {
    const policy = testPolicy({ dns: { servers: [zoneA.address] } });
    const good = await runCase(genuine('participant-reply', 'en', 'text'), policy);
    assert.ok(symbols(good).includes('AUTH_DMARC_PASS'), symbols(good).join(','));
    assert.ok(asked(zoneA, '_dmarc.partner.example') >= 1);
    const bad = await runCase(hijack('real-from-other-envelope', 'en', 'text'), policy);
    assert.ok(symbols(bad).includes('AUTH_DMARC_REJECT'), symbols(bad).join(','));
    assert.equal(bad.action, 'quarantine');
  });

  it('a DKIM key too large for a server without EDNS comes over TCP and verifies', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
    const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const zone = { ...FIXTURE_ZONE, 'mail2024._domainkey.partner.example': { TXT: [`v=DKIM1; k=rsa; p=${p}`] } };
    const server = await startDnsServer(zone, { udpLimit: 512 }); // 512 bytes: UDP without EDNS (RFC 1035)
    try {
      const { us, them } = PEOPLE.en;
      const message = buildMessage({ from: `"${them.name}" <${them.address}>`, to: us.address, subject: 'Signed', body: 'hello' });
      const key = { signingDomain: 'partner.example', selector: 'mail2024', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
      const signed = await dkimSign(message, { ...key, signatureData: [key] });
      assert.match(signed.signatures, /^DKIM-Signature: /);
      const v = await runMessage(
        Buffer.concat([Buffer.from(signed.signatures), message]),
        { mailFrom: 'bounce@elsewhere.example', rcptTo: [us.address] },
        { address: '203.0.113.5', helo: 'out.elsewhere.example' },
        testPolicy({ dns: { servers: [server.address] } }),
      );
      assert.ok(symbols(v).includes('AUTH_DMARC_PASS'), `DKIM alone aligns DMARC: ${symbols(v).join(',')}`);
      const transports = server.questions.filter((q) => q.name === 'mail2024._domainkey.partner.example').map((q) => q.transport);
      assert.deepEqual(transports, ['udp', 'tcp']);
    } finally {
      await server.close();
    }
  });
});

describe('dns: the cache keeps answers within dns.cache.minTtl and maxTtl', function () {
  const zone = { 'partner.example': { TXT: ['v=spf1 -all'] }, 'other.example': { TXT: ['x'] }, 'third.example': { TXT: ['y'] } };

  it("keeps an answer for the record's own TTL", async () => {
    const server = await startDnsServer(zone, { ttl: 1 });
    try {
      const resolve = policyResolver(dnsPolicy({ servers: [server.address], cache: { minTtl: 0, maxTtl: '1h' } }));
      await resolve('partner.example', 'TXT');
      await resolve('PARTNER.example.', 'TXT');
      assert.equal(asked(server, 'partner.example'), 1, 'within the TTL: from the cache');
      await sleep(1100);
      await resolve('partner.example', 'TXT');
      assert.equal(asked(server, 'partner.example'), 2, 'past the TTL: asked again');
    } finally {
      await server.close();
    }
  });

  it('raises a short TTL to minTtl and cuts a long one to maxTtl', async () => {
    const zero = await startDnsServer(zone, { ttl: 0 });
    const long = await startDnsServer(zone, { ttl: 86_400 });
    try {
      const atLeast = policyResolver(dnsPolicy({ servers: [zero.address], cache: { minTtl: '1m', maxTtl: '1h' } }));
      for (let i = 0; i < 3; i++) await atLeast('partner.example', 'TXT');
      assert.equal(asked(zero, 'partner.example'), 1, 'TTL 0 kept for minTtl');
      const atMost = policyResolver(dnsPolicy({ servers: [long.address], cache: { minTtl: 0, maxTtl: '300ms' } }));
      await atMost('partner.example', 'TXT');
      await atMost('partner.example', 'TXT');
      await sleep(350);
      await atMost('partner.example', 'TXT');
      assert.equal(asked(long, 'partner.example'), 2, 'a day-long TTL cut to maxTtl');
    } finally {
      await Promise.all([zero.close(), long.close()]);
    }
  });

  it('keeps "no such name" for its SOA minimum, and never keeps SERVFAIL', async () => {
    const server = await startDnsServer(zone, { negativeTtl: 1, servfail: new Set(['broken.example']) });
    try {
      const resolve = policyResolver(dnsPolicy({ servers: [server.address], cache: { minTtl: 0 } }));
      for (let i = 0; i < 2; i++) await assert.rejects(resolve('nowhere.example', 'TXT'), { code: 'ENOTFOUND' });
      await assert.rejects(resolve('partner.example', 'MX'), { code: 'ENODATA' });
      assert.equal(asked(server, 'nowhere.example'), 1);
      await sleep(1100);
      await assert.rejects(resolve('nowhere.example', 'TXT'), { code: 'ENOTFOUND' });
      assert.equal(asked(server, 'nowhere.example'), 2);
      for (let i = 0; i < 3; i++) await assert.rejects(resolve('broken.example', 'TXT'), { code: 'ESERVFAIL' });
      assert.equal(asked(server, 'broken.example'), 3, 'a failure is asked again every time');
    } finally {
      await server.close();
    }
  });

  it('holds at most cache.size answers, dropping the least recently used', async () => {
    const server = await startDnsServer(zone);
    try {
      const resolve = policyResolver(dnsPolicy({ servers: [server.address], cache: { size: 2 } }));
      for (const name of ['partner.example', 'other.example', 'partner.example', 'third.example', 'partner.example', 'other.example'])
        await resolve(name, 'TXT');
      assert.equal(asked(server, 'partner.example'), 1, 'used again and again: kept');
      assert.equal(asked(server, 'other.example'), 2, 'least recently used when third.example came: dropped');
    } finally {
      await server.close();
    }
  });

  it('one question in flight is asked once, however many messages want it', async () => {
    const server = await startDnsServer(zone);
    try {
      const resolve = policyResolver(dnsPolicy({ servers: [server.address] }));
      await Promise.all(Array.from({ length: 20 }, () => resolve('partner.example', 'TXT')));
      assert.equal(asked(server, 'partner.example'), 1);
    } finally {
      await server.close();
    }
  });
});

describe('dns: an unreachable server', function () {
  it('is AUTH_TEMPERROR within dns.timeout, and the other checks still decide', async () => {
    const silent = await startDnsServer({}, { silent: true });
    const closed = await closedDnsPort();
    try {
      const resolve = policyResolver(dnsPolicy({ servers: [silent.address], timeout: '300ms' }));
      const one = await timed(() => resolve('partner.example', 'TXT'));
      assert.equal(one.error?.code, 'ETIMEOUT');
      assert.ok(one.ms >= 280 && one.ms < 700, `one query: ${one.ms} ms`);
      assert.equal(asked(silent, 'partner.example'), 2, 'sent, and sent again halfway');
      // the next lookup of the same message does not wait the whole timeout again
      const next = await timed(() => resolve('_dmarc.partner.example', 'TXT'));
      assert.equal(next.error?.code, 'ETIMEOUT');
      assert.ok(next.ms < 100, `next query: ${next.ms} ms`);
      assert.equal(asked(silent, '_dmarc.partner.example'), 0);
      await sleep(350);
      await assert.rejects(resolve('_dmarc.partner.example', 'TXT'), { code: 'ETIMEOUT' });
      assert.equal(asked(silent, '_dmarc.partner.example'), 2, 'after the timeout the server is tried again');
      for (const servers of [[silent.address], [closed]]) {
        const policy = testPolicy({ dns: { servers, timeout: '300ms' } });
        const good = await timed(() => runCase(genuine('participant-reply', 'en', 'text'), policy));
        assert.ok(symbols(good.value!).includes('AUTH_TEMPERROR'), symbols(good.value!).join(','));
        assert.equal(good.value!.action, 'relay');
        assert.ok(good.ms < 300 + 600, `a whole message: ${good.ms} ms (${servers.join()})`);
        const bad = await runCase(hijack('real-from-other-envelope', 'en', 'text'), policy);
        assert.ok(symbols(bad).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH'), symbols(bad).join(','));
        assert.ok(symbols(bad).includes('SPOOF_SUSPECT') || symbols(bad).includes('SPOOF_HIJACK'));
      }
    } finally {
      await silent.close();
    }
  });
});

describe('dns: policy', function () {
  it('spoof.dnsTimeout is refused with the key that replaced it, in the file and on the command line', () => {
    assert.deepEqual(problems('spoof:\n  enabled: true\n  dnsTimeout: 2s\n'), [
      { where: 'p.yaml:3:3', key: 'spoof.dnsTimeout', message: 'moved: this option is now dns.timeout' },
    ]);
    assert.deepEqual(problems('', ['spoof.dnsTimeout=1s']), [
      { where: '--set spoof.dnsTimeout', key: 'spoof.dnsTimeout', message: 'moved: this option is now dns.timeout' },
    ]);
    assert.equal(parsePolicy('dns:\n  timeout: 1s\n', 'p.yaml').policy.dns.timeout, 1000);
  });

  it('servers are addresses with an optional port; TTL bounds in order', () => {
    assert.deepEqual(parseNameServer('127.0.0.1'), { host: '127.0.0.1', port: 53 });
    assert.deepEqual(parseNameServer('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseNameServer('[::1]:5353'), { host: '::1', port: 5353 });
    assert.deepEqual(parseNameServer('::1'), { host: '::1', port: 53 });
    for (const bad of ['resolver.example:53', '127.0.0.1:0', '127.0.0.1:70000', '[::1', '']) assert.equal(parseNameServer(bad), null, bad);
    const p = problems('dns:\n  servers: [127.0.0.1:53, resolver.example:53]\n  cache:\n    minTtl: 2h\n    maxTtl: 1h\n');
    assert.deepEqual(
      p.map((x) => [x.where, x.key]),
      [
        ['p.yaml:2:27', 'dns.servers.1'],
        ['p.yaml:4:5', 'dns.cache.minTtl'],
      ],
    );
    assert.match(p[0].message, /by IP address with an optional port/);
    assert.match(p[1].message, /minTtl is longer than maxTtl/);
  });

  it("no servers: the system's, as /etc/resolv.conf gives them to Node", () => {
    const system = getServers()
      .map(parseNameServer)
      .filter((s) => s !== null);
    assert.deepEqual(nameServers(dnsPolicy({})), system.length ? system : [{ host: '127.0.0.1', port: 53 }]);
  });
});
