// A participant's real address with someone else's infrastructure (issue 12 §3): the memory learns,
// per sender and per sending domain, the networks, envelope organisations and DKIM signers of genuine
// mail; a reply from a known sender through none of them, with no DMARC pass, is
// SPOOF_KNOWN_SENDER_NEW_INFRA and quarantined on its own. The same knowledge clears partner mail sent
// through a mailing service (SPOOF_KNOWN_SENDING_SERVICE), also when DNS is unreachable.
import assert from 'node:assert/strict';
import type { DNSResolver } from '../../src/inspect/spoof/auth.js';
import { infrastructureTokens, networkOf, observeInfrastructure, trustedTokens } from '../../src/inspect/spoof/infrastructure.js';
import type { StateBackend } from '../../src/state/index.js';
import { verifiedClientName } from '../../src/message/parsed.js';
import { runAndLearn, symbols, testPolicy } from '../fixtures/mail/run.js';
import { ESP_BOUNCE, HOSTS, senderKeys, signed, SMALL } from '../fixtures/mail/senders.js';
import { ATTACKER, buildMessage, display, ORIGINAL_ID, originalMessage, PEOPLE, quotedOriginal, type Person } from '../fixtures/mail/threads.js';
import { unreachableResolver, zoneResolver } from '../fixtures/mail/zone.js';

const { us, them: bob, colleague: dan } = PEOPLE.en;
const SMALL_THREAD = 'kobo-thread@mail.example.com';
const up = () => zoneResolver(senderKeys().zone);
type Host = { address: string; helo: string; name?: string };

/** A reply to one of our threads, as `from` writes it. */
function reply(from: Person, thread = ORIGINAL_ID, extra?: Record<string, string>): Buffer {
  return buildMessage({
    from: display(from),
    to: display(us),
    subject: 'RE: Quote for the Q3 order',
    body: `Please find the updated invoice attached.\n\n${quotedOriginal('en', 'text', us, from)}`,
    inReplyTo: thread,
    references: [thread],
    ...(extra ? { extra } : {}),
  });
}

async function send(state: StateBackend, bytes: Buffer, mailFrom: string, host: Host, resolver: DNSResolver, policy = testPolicy()) {
  return runAndLearn(bytes, { mailFrom, rcptTo: [us.address] }, host, policy, { state, resolver });
}

const ours: Host = { address: '127.0.0.1', helo: 'pc17.example.com' };

/** Our threads with Bob and with Kaori, and one genuine reply from each through their own servers (DNS up). */
async function knownCorrespondents(): Promise<StateBackend> {
  const state: StateBackend = { kind: 'memory' };
  const policy = testPolicy();
  for (const bytes of [
    buildMessage(originalMessage('en')),
    buildMessage({ from: display(us), to: display(SMALL), subject: 'Quote for the Q3 order', body: 'Hi Kaori', messageId: SMALL_THREAD }),
  ]) {
    const v = await runAndLearn(bytes, { mailFrom: us.address, rcptTo: [bob.address, SMALL.address] }, ours, policy, { state, resolver: up() });
    assert.ok(v.update?.threads.length);
  }
  const fromBob = await send(state, await signed(reply(bob), 'partner.example'), bob.address, HOSTS.partner, up());
  assert.equal(fromBob.action, 'relay', symbols(fromBob).join(','));
  assert.deepEqual(fromBob.update?.infrastructure[0].tokens.sort(), ['dkim:partner.example', 'env:partner.example', 'net:198.51.100.0/24']);
  const fromKaori = await send(state, await signed(reply(SMALL, SMALL_THREAD), 'kobo.example'), SMALL.address, HOSTS.small, up());
  assert.equal(fromKaori.action, 'relay', symbols(fromKaori).join(','));
  return state;
}

const fired = (v: Parameters<typeof symbols>[0]) => symbols(v).includes('SPOOF_KNOWN_SENDER_NEW_INFRA');
const positives = (v: { findings: { symbol: string; score: number }[] }) => v.findings.filter((f) => f.score > 0).map((f) => f.symbol);

describe('spoof: the infrastructure of a known sender', () => {
  it('networks are /24 (IPv4) and /48 (IPv6); the envelope counts unless SPF says no', () => {
    assert.equal(networkOf('198.51.100.77'), 'net:198.51.100.0/24');
    assert.equal(networkOf('::ffff:198.51.100.77'), 'net:198.51.100.0/24');
    assert.equal(networkOf('2001:db8:10:7::9'), networkOf('2001:db8:10:1::25'));
    assert.notEqual(networkOf('2001:db8:11::1'), networkOf('2001:db8:10::1'));
    assert.equal(networkOf('unknown'), '');
    const auth = (spf: string) => ({
      spf,
      dkim: [{ domain: 'mail.partner.example', result: 'pass', aligned: true }],
      dmarc: null,
      arc: 'none',
      temperror: false,
      header: '',
    });
    const pass = observeInfrastructure({ address: '198.51.100.10' }, 'partner.example', auth('pass'));
    assert.deepEqual(infrastructureTokens(pass), ['net:198.51.100.0/24', 'env:partner.example', 'dkim:partner.example']);
    assert.deepEqual(trustedTokens(observeInfrastructure({ address: '203.0.113.66' }, 'partner.example', auth('fail'))), [
      'net:203.0.113.0/24',
      'dkim:partner.example',
    ]);
    assert.deepEqual(trustedTokens(observeInfrastructure({ address: '203.0.113.66' }, 'partner.example', null)), ['net:203.0.113.0/24', 'env:partner.example']);
  });

  describe("hijacks: the participant's real From through someone else's infrastructure", () => {
    for (const [dns, resolver] of [
      ['DNS up', up],
      ['DNS unreachable', () => unreachableResolver],
    ] as const) {
      it(`real From, the attacker's envelope and host (${dns}): quarantined`, async () => {
        const state = await knownCorrespondents();
        const v = await send(state, reply(bob), ATTACKER, HOSTS.attacker, resolver());
        assert.ok(fired(v), symbols(v).join(','));
        assert.match(v.findings.find((f) => f.symbol === 'SPOOF_KNOWN_SENDER_NEW_INFRA')?.detail ?? '', /net:203\.0\.113\.0\/24/);
        assert.equal(v.action, 'quarantine');
      });
    }

    it('with authentication switched off: quarantined', async () => {
      const state = await knownCorrespondents();
      const v = await send(state, reply(bob), ATTACKER, HOSTS.attacker, up(), testPolicy({ spoof: { authentication: false } }));
      assert.ok(fired(v), symbols(v).join(','));
      assert.equal(v.action, 'quarantine');
    });

    it('quarantined on its own: a partner without SPF or DMARC, its own address in the envelope, from the attacker', async () => {
      const state = await knownCorrespondents();
      const v = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, HOSTS.attacker, up());
      assert.deepEqual(positives(v), ['SPOOF_KNOWN_SENDER_NEW_INFRA']);
      assert.equal(v.action, 'quarantine');
    });

    it("the way around: a VERP-looking envelope, a Sender header, the attacker's own DKIM, a copied DKIM signature, IPv6", async () => {
      const state = await knownCorrespondents();
      const variants: [string, () => Promise<Buffer>, string, Host][] = [
        ['VERP-looking envelope', async () => reply(bob), 'bounce-alice.walker=example.com@hacked-shop.example', HOSTS.attacker],
        ['Sender of the envelope organisation', async () => reply(bob, ORIGINAL_ID, { Sender: ATTACKER }), ATTACKER, HOSTS.attacker],
        ["the attacker's own valid DKIM", () => signed(reply(bob), 'hacked-shop.example'), ATTACKER, HOSTS.attacker],
        [
          "the partner's DKIM signature copied from the stolen thread",
          async () => {
            const stolen = await signed(reply(bob), 'partner.example');
            const header = stolen.subarray(0, stolen.indexOf('From:')).toString();
            return Buffer.concat([Buffer.from(header), reply({ name: bob.name, address: bob.address })]);
          },
          ATTACKER,
          HOSTS.attacker,
        ],
        ['IPv6', async () => reply(bob), ATTACKER, HOSTS.attackerV6],
      ];
      for (const [label, make, mailFrom, host] of variants) {
        for (const resolver of [up(), unreachableResolver]) {
          const v = await send(state, await make(), mailFrom, host, resolver);
          assert.ok(fired(v), `${label}: ${symbols(v).join(',')}`);
          assert.equal(v.action, 'quarantine', label);
        }
      }
    });

    it("the attacker sends through the partner's mailing service envelope from its own host: SPF says no, the envelope does not count", async () => {
      const state = await knownCorrespondents();
      // the partner's genuine mail through its mailing service taught the memory that bounce domain
      const esp = await send(state, await signed(reply(SMALL, SMALL_THREAD), 'kobo.example'), ESP_BOUNCE, HOSTS.esp, up());
      assert.equal(esp.action, 'relay', symbols(esp).join(','));
      const v = await send(state, reply(SMALL, SMALL_THREAD), ESP_BOUNCE, HOSTS.attacker, up());
      assert.ok(fired(v), symbols(v).join(','));
      assert.ok(!symbols(v).includes('SPOOF_KNOWN_SENDING_SERVICE') && symbols(v).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH'), symbols(v).join(','));
      assert.equal(v.action, 'quarantine');
    });
  });

  describe('genuine near-neighbours do not fire', () => {
    it("Bob from another host of his network, and his colleague's new laptop on it (DNS unreachable)", async () => {
      const state = await knownCorrespondents();
      for (const [who, mailFrom] of [
        [bob, bob.address],
        [dan, dan.address],
      ] as const) {
        const v = await send(state, reply(who), mailFrom, HOSTS.partnerNeighbour, unreachableResolver);
        assert.ok(!fired(v), `${who.address}: ${symbols(v).join(',')}`);
        assert.equal(v.action, 'relay');
      }
    });

    it('a partner without DMARC, from another server of its network (DNS up)', async () => {
      const state = await knownCorrespondents();
      const v = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, HOSTS.smallNeighbour, up());
      assert.ok(!fired(v), symbols(v).join(','));
      assert.equal(v.action, 'relay');
    });

    it("a partner on shared hosting: once its mail came from two /24s of the provider's /16, a third there is no news; elsewhere it still fires", async () => {
      const state = await knownCorrespondents(); // Kaori's genuine reply came from 192.0.2.0/24 (no SPF, no DMARC, no DKIM)
      const pool = (third: number) => ({ address: `192.0.${third}.30`, helo: `www${third}.sharedhost.example` });
      // a second /24 of the /16: one /24 before it does not make a pool, so this one still fires
      const second = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, pool(7), up());
      assert.ok(fired(second), symbols(second).join(','));
      // learned as genuine (an admin released it, or it was relayed): now two /24s of 192.0.0.0/16
      await runAndLearn(
        reply(SMALL, SMALL_THREAD),
        { mailFrom: SMALL.address, rcptTo: [us.address] },
        pool(7),
        testPolicy({ spoof: { enabled: true, authentication: false } }),
        {
          state,
          resolver: up(),
        },
      );
      const third = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, pool(88), up());
      assert.ok(!fired(third), symbols(third).join(','));
      assert.equal(third.action, 'relay');
      // the attacker's host in another /16 is still new infrastructure
      const attacker = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, HOSTS.attacker, up());
      assert.ok(fired(attacker), symbols(attacker).join(','));
    });

    it("a partner without SPF on shared hosting: its provider's servers, by the names the MTA in front verified, are its; a botnet PC or another provider still fires", async () => {
      const state: StateBackend = { kind: 'memory' };
      const outbound = buildMessage({ from: display(us), to: display(SMALL), subject: 'Quote for the Q3 order', body: 'Hi Kaori', messageId: SMALL_THREAD });
      await runAndLearn(outbound, { mailFrom: us.address, rcptTo: [SMALL.address] }, ours, testPolicy(), { state, resolver: up() });
      const shared = (a: number, b: number) => ({ address: `${a}.${b}.40.7`, helo: `www${b}.sharedhost.example`, name: `www${b}.sharedhost.example` });
      const first = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, shared(153, 120), up());
      assert.equal(first.action, 'relay', symbols(first).join(','));
      assert.ok(first.update?.infrastructure[0].tokens.includes('host:sharedhost.example'), JSON.stringify(first.update?.infrastructure));
      // another range of the provider altogether: no /24 or /16 in common, the verified name's organisation is
      const other = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, shared(157, 7), up());
      assert.ok(!fired(other), symbols(other).join(','));
      assert.equal(other.action, 'relay');
      // the way around: a botnet PC (no verified name), another provider's server, a name only claimed in HELO
      for (const host of [
        { address: '180.12.9.44', helo: 'DESKTOP-7Q' },
        { address: '45.76.3.9', helo: 'mail.vps-rent.example', name: 'mail.vps-rent.example' },
        { address: '45.76.3.9', helo: 'www9.sharedhost.example' },
      ]) {
        const v = await send(state, reply(SMALL, SMALL_THREAD), SMALL.address, host, up());
        assert.ok(fired(v), `${JSON.stringify(host)}: ${symbols(v).join(',')}`);
        assert.notEqual(v.action, 'relay');
      }
      // a domain with SPF gets no host token: there the provider is everyone's
      const withSpf = await send(state, reply(bob), bob.address, { ...HOSTS.partner, name: 'mail.partner.example' }, up());
      assert.ok(!withSpf.update?.infrastructure[0].tokens.some((t) => t.startsWith('host:')), JSON.stringify(withSpf.update?.infrastructure));
    });

    it('a verified client name as MTAs pass it on: "unknown", [UNAVAILABLE], bracketed or dotless names are none', () => {
      assert.equal(verifiedClientName('www40.SharedHost.example.'), 'www40.sharedhost.example');
      for (const none of ['unknown', '[UNAVAILABLE]', '[198.51.100.7]', 'localhost', '198.51.100.7', '', undefined])
        assert.equal(verifiedClientName(none), undefined, String(none));
    });

    it('IPv6: another host of the same /48', async () => {
      const state = await knownCorrespondents();
      const first = await send(state, reply(bob), bob.address, HOSTS.partnerV6, up());
      assert.equal(first.action, 'relay', symbols(first).join(','));
      const v = await send(state, reply(bob), bob.address, HOSTS.partnerV6Neighbour, unreachableResolver);
      assert.ok(!fired(v), symbols(v).join(','));
    });

    it('a partner that switched to a mailing service signing with its own domain (DMARC pass, or aligned DKIM without DMARC)', async () => {
      const state = await knownCorrespondents();
      const viaEsp = await send(state, await signed(reply(bob), 'partner.example'), ESP_BOUNCE, HOSTS.esp, up());
      assert.ok(!fired(viaEsp) && symbols(viaEsp).includes('AUTH_DMARC_PASS'), symbols(viaEsp).join(','));
      assert.equal(viaEsp.action, 'relay');
      const small = await send(state, await signed(reply(SMALL, SMALL_THREAD), 'kobo.example'), ESP_BOUNCE, HOSTS.esp, up());
      assert.ok(!fired(small), symbols(small).join(','));
      assert.ok(symbols(small).includes('AUTH_DKIM_ALIGNED'), symbols(small).join(','));
      assert.ok(!symbols(small).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH'), symbols(small).join(','));
      assert.equal(small.action, 'relay');
    });

    it('a mailing list that keeps From, and one that rewrites it', async () => {
      const state = await knownCorrespondents();
      const list = { 'List-Id': '<dev.lists.listhost.org>', 'List-Post': '<mailto:dev@lists.listhost.org>' };
      const keeps = await send(state, reply(bob, ORIGINAL_ID, list), 'dev-bounces@lists.listhost.org', HOSTS.list, up());
      assert.ok(!fired(keeps), symbols(keeps).join(','));
      const rewrites = await send(
        state,
        reply({ name: `${bob.name} via dev`, address: 'dev@lists.listhost.org' }, 'list-1@lists.listhost.org', list),
        'dev-bounces@lists.listhost.org',
        HOSTS.list,
        unreachableResolver,
      );
      assert.ok(!fired(rewrites), symbols(rewrites).join(','));
      assert.equal(rewrites.action, 'relay');
    });

    it('a sender we only ever wrote to (nothing learned yet) is not judged by infrastructure', async () => {
      const state: StateBackend = { kind: 'memory' };
      await runAndLearn(buildMessage(originalMessage('en')), { mailFrom: us.address, rcptTo: [bob.address] }, ours, testPolicy(), { state, resolver: up() });
      const v = await send(state, await signed(reply(bob), 'partner.example'), bob.address, HOSTS.partner, unreachableResolver);
      assert.ok(!fired(v), symbols(v).join(','));
    });
  });

  describe('partner mail through a mailing service, DNS unreachable', () => {
    it("the partner-bounce flags go once the memory has seen that service send the partner's genuine mail", async () => {
      const state = await knownCorrespondents();
      const viaEsp = () => reply(SMALL, SMALL_THREAD);
      // unknown service, nothing verifiable: the From/envelope mismatch (today's tag) and new infrastructure for a known sender
      const before = await send(state, viaEsp(), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      assert.ok(symbols(before).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH') && fired(before), symbols(before).join(','));
      assert.notEqual(before.action, 'relay');
      // one message through the service while DNS works: aligned DKIM, relayed, learned
      const learned = await send(state, await signed(viaEsp(), 'kobo.example'), ESP_BOUNCE, HOSTS.esp, up());
      assert.equal(learned.action, 'relay', symbols(learned).join(','));
      assert.ok(learned.update?.infrastructure[0].tokens.includes('env:esp-mailer.example'));
      const after = await send(state, viaEsp(), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      assert.ok(!symbols(after).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH'), symbols(after).join(','));
      assert.ok(symbols(after).includes('SPOOF_KNOWN_SENDING_SERVICE'), symbols(after).join(','));
      assert.equal(after.action, 'relay');
      // a newsletter of the partner through the same service, not a reply
      const news = buildMessage({ from: display(SMALL), to: display(us), subject: 'Kobo news, June', body: 'News' });
      const newsletter = await send(state, news, ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      assert.deepEqual(positives(newsletter), []);
    });

    /** The partner's own notice through its mailing service: bulk marks, the service's envelope, no reply. */
    const notice = (extra: Record<string, string> = {}) =>
      buildMessage({
        from: display(SMALL),
        to: display(us),
        subject: 'Your invoice is ready',
        body: 'Your invoice for June is ready: https://billing.kobo.example/i/7731',
        extra: { 'List-Unsubscribe': '<https://bounce.esp-mailer.example/u/7a1f93>', Precedence: 'bulk', ...extra },
      });
    const viaEspReply = () => send(stateRef.state, reply(SMALL, SMALL_THREAD), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
    const stateRef = { state: {} as StateBackend };
    const flaggedReply = (v: Awaited<ReturnType<typeof send>>) => symbols(v).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH') || fired(v);

    it("the partner's notices through the service teach it: at once when DNS vouches (SPF pass for the bounce domain), on the second notice when DNS is unreachable", async () => {
      stateRef.state = await knownCorrespondents();
      const first = await send(stateRef.state, notice(), ESP_BOUNCE, HOSTS.esp, up());
      assert.deepEqual(positives(first), []);
      const after = await viaEspReply();
      assert.ok(!flaggedReply(after) && symbols(after).includes('SPOOF_KNOWN_SENDING_SERVICE'), symbols(after).join(','));
      assert.equal(after.action, 'relay');

      stateRef.state = await knownCorrespondents();
      await send(stateRef.state, notice(), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      const once = await viaEspReply();
      assert.ok(flaggedReply(once), `one unverifiable notice is no evidence yet: ${symbols(once).join(',')}`);
      await send(stateRef.state, notice(), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      const twice = await viaEspReply();
      assert.ok(!flaggedReply(twice), symbols(twice).join(','));
      assert.equal(twice.action, 'relay');
    });

    it("the way around: notices from the attacker's host under the service's envelope (SPF says no), through a discussion list, or once on an attacker's own bounce domain teach nothing", async () => {
      stateRef.state = await knownCorrespondents();
      // SPF says the attacker's host may not use the service's bounce domain: twice, and still nothing learned
      for (let i = 0; i < 2; i++) await send(stateRef.state, notice(), ESP_BOUNCE, HOSTS.attacker, up());
      const forged = await send(stateRef.state, reply(SMALL, SMALL_THREAD), ESP_BOUNCE, HOSTS.attacker, up());
      assert.ok(fired(forged), symbols(forged).join(','));
      assert.notEqual(forged.action, 'relay');
      // a list post is someone else relaying, not a service sending for the partner
      for (let i = 0; i < 2; i++)
        await send(stateRef.state, notice({ 'List-Post': '<mailto:news@bounce.esp-mailer.example>' }), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      assert.ok(flaggedReply(await viaEspReply()));
      // the attacker's own bounce domain, one bulk message ahead of the reply (DNS unreachable)
      const own = 'b-1@bounce.hacked-shop.example';
      await send(stateRef.state, notice(), own, HOSTS.attacker, unreachableResolver);
      const hijack = await send(stateRef.state, reply(SMALL, SMALL_THREAD), own, HOSTS.attacker, unreachableResolver);
      assert.ok(fired(hijack), symbols(hijack).join(','));
      assert.notEqual(hijack.action, 'relay');
    });

    it('a bounce domain seen with another From domain clears nothing', async () => {
      const state = await knownCorrespondents();
      await send(state, await signed(reply(SMALL, SMALL_THREAD), 'kobo.example'), ESP_BOUNCE, HOSTS.esp, up());
      const v = await send(state, reply(bob), ESP_BOUNCE, HOSTS.esp, unreachableResolver);
      assert.ok(symbols(v).includes('SPOOF_REPLY_FROM_ENVELOPE_MISMATCH'), symbols(v).join(','));
      assert.ok(fired(v), symbols(v).join(','));
    });
  });
});

describe('spoof: a reply that comes back through the mailing list the thread went to', () => {
  const LIST = 'partners@lists.listhost.org';
  const BOUNCE = 'partners-bounces@lists.listhost.org';
  const THREAD = 'list-thread-1@mail.example.com';
  const member = { name: 'Carol Jones', address: 'carol@member-firm.example' };
  const listReply = () =>
    buildMessage({
      from: display(member),
      to: LIST,
      subject: 'Re: Trade fair stand',
      body: `I can take Tuesday.\n\n${quotedOriginal('en', 'text', us, member)}`,
      inReplyTo: THREAD,
      references: [THREAD],
      extra: { 'List-Id': '<partners.lists.listhost.org>', 'List-Post': `<mailto:${LIST}>` },
    });

  async function threadToList(): Promise<StateBackend> {
    const state: StateBackend = { kind: 'memory' };
    const v = await runAndLearn(
      buildMessage({ from: display(us), to: LIST, subject: 'Trade fair stand', body: 'Who can staff the stand?', messageId: THREAD }),
      { mailFrom: us.address, rcptTo: [LIST] },
      ours,
      testPolicy(),
      { state, resolver: up() },
    );
    assert.ok(v.update?.threads.length);
    return state;
  }

  it("a member's reply through the list's own server (its envelope, SPF pass) is no outsider", async () => {
    const v = await send(await threadToList(), listReply(), BOUNCE, HOSTS.list, up());
    assert.ok(!symbols(v).includes('SPOOF_THREAD_OUTSIDER'), symbols(v).join(','));
    assert.equal(v.action, 'relay');
  });

  it("the way around: List-Post copied onto the attacker's own envelope, or the list's envelope from the attacker's host", async () => {
    const ownEnvelope = await send(await threadToList(), listReply(), ATTACKER, HOSTS.attacker, up());
    assert.ok(symbols(ownEnvelope).includes('SPOOF_THREAD_OUTSIDER'), symbols(ownEnvelope).join(','));
    const listEnvelope = await send(await threadToList(), listReply(), BOUNCE, HOSTS.attacker, up());
    assert.ok(symbols(listEnvelope).includes('SPOOF_THREAD_OUTSIDER'), symbols(listEnvelope).join(','));
  });
});
