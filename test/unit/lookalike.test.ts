// Lookalike domains (SPOOF_LOOKALIKE_DOMAIN, SPOOF_REPLY_LOOKALIKE_DOMAIN): every family of
// impostor names built by code against internal and known correspondents' domains, the genuine
// near-neighbours that must stay apart, and the signal in whole messages through the inspect stage.
import assert from 'node:assert/strict';
import { knownDomains, type KnownDomains } from '../../src/inspect/spoof/known-domains.js';
import { lookalikeOf } from '../../src/inspect/spoof/lookalike-signal.js';
import { skeleton } from '../../src/inspect/spoof/skeleton.js';
import { learnFromRelayed } from '../../src/inspect/spoof/index.js';
import { parseHeaderBlock } from '../../src/message/parsed.js';
import { MemoryThreadMemory, ThreadMemoryUnavailable, threadMemoryFor, type ThreadMemory } from '../../src/state/thread-memory.js';
import type { StateBackend } from '../../src/state/index.js';
import { lookalikeFamily, PROVIDER_SENDERS, REAL_NEIGHBOURS, SHORT_NAMES, type VariantKind } from '../fixtures/lookalike.js';
import { runMessage, symbols, testPolicy } from '../fixtures/mail/run.js';
import { buildMessage, display, originalMessage, PEOPLE, quotedOriginal, SUBJECT, type Lang } from '../fixtures/mail/threads.js';
import { nxdomainResolver, zoneResolver } from '../fixtures/mail/zone.js';

const DAY = 86_400_000;

async function known(...domains: string[]): Promise<KnownDomains> {
  const memory = new MemoryThreadMemory();
  await memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains }, DAY);
  return knownDomains(memory);
}

describe('lookalike: skeletons (UTS #39 confusables, case and diacritics folded)', () => {
  it('writes that look the same share one skeleton; different names do not', () => {
    const same = ['example', 'EXAMPLE', 'examp1e', 'exаmple' /* Cyrillic а */, 'exämple', 'exarnple', 'ｅｘａｍｐｌｅ'];
    for (const s of same) assert.equal(skeleton(s), skeleton('example'), s);
    assert.equal(skeleton('g00gle'), skeleton('google'));
    assert.equal(skeleton('vvalmart'), skeleton('walmart'));
    assert.equal(skeleton('clocomo'), skeleton('docomo'));
    for (const s of ['exemple', 'sample', 'exampel']) assert.notEqual(skeleton(s), skeleton('example'), s);
  });
});

describe('lookalike: impostor families against each kind of target', () => {
  const targets: { domain: string; origin: 'internal' | 'correspondent'; kinds: VariantKind[] }[] = [
    { domain: 'example.com', origin: 'internal', kinds: ['suffix', 'confusable', 'idn', 'hyphen', 'word', 'edit', 'embedded'] },
    { domain: 'torihiki.co.jp', origin: 'correspondent', kinds: ['suffix', 'confusable', 'idn', 'hyphen', 'word', 'edit', 'embedded'] },
    // no letter of "partner" has an ASCII stand-in: only Unicode ones
    { domain: 'partner.example', origin: 'correspondent', kinds: ['suffix', 'idn', 'hyphen', 'word', 'edit', 'embedded'] },
    { domain: 'mitsubishielectric.co.jp', origin: 'correspondent', kinds: ['suffix', 'confusable', 'idn', 'hyphen', 'word', 'edit', 'embedded'] },
    // a short name: only the visual tricks count (no suffix swap under 4 letters, no edits under 5)
    { domain: 'ntt.co.jp', origin: 'correspondent', kinds: ['idn', 'hyphen', 'word', 'embedded'] },
  ];
  const policy = testPolicy();
  for (const { domain, origin, kinds } of targets) {
    it(`every lookalike of ${domain} (${origin}) is caught and names it`, async () => {
      const k = await known(...(origin === 'correspondent' ? [domain, 'unrelated-partner.example'] : ['unrelated-partner.example']));
      const family = lookalikeFamily(domain);
      assert.deepEqual([...new Set(family.map((v) => v.kind))].sort(), [...kinds].sort(), 'the family covers every kind');
      const missed = family.filter((v) => lookalikeOf(v.domain, policy, k)?.target.domain !== domain);
      assert.deepEqual(
        missed.map((v) => `${v.domain} (${v.kind}: ${v.how})`),
        [],
      );
      for (const v of family.filter((x) => x.kind === 'idn')) {
        assert.ok(v.domain.includes('xn--'), `${v.domain} is an IDN`);
        assert.equal(lookalikeOf(v.domain, policy, k)?.kind, 'confusable', v.domain);
      }
    });
  }

  it('the same family is no lookalike when the target is not known (nothing to imitate)', async () => {
    const k = await known('unrelated-partner.example');
    const fired = lookalikeFamily('torihiki.co.jp').filter((v) => lookalikeOf(v.domain, testPolicy(), k));
    assert.deepEqual(
      fired.map((v) => v.domain),
      [],
    );
  });
});

describe('lookalike: genuine near-neighbours', () => {
  const policy = testPolicy();

  it('two real businesses with close names that are both known correspondents do not fire on each other', async () => {
    for (const [a, b] of REAL_NEIGHBOURS) {
      const both = await known(a, b);
      assert.equal(lookalikeOf(a, policy, both), null, `${a} with ${b} known`);
      assert.equal(lookalikeOf(b, policy, both), null, `${b} with ${a} known`);
      // … and the pair is close enough that it would, were only one of them known
      assert.ok(lookalikeOf(b, policy, await known(a)), `${b} is close to ${a}`);
    }
  });

  it('the domain itself, its subdomains, and the subdomains of internal domains', async () => {
    const k = await known('partner.example', 'torihiki.co.jp');
    for (const d of ['partner.example', 'mail.partner.example', 'bounce.mail.partner.example', 'TORIHIKI.CO.JP', 'smtp.torihiki.co.jp', 'torihiki.co.jp.']) {
      assert.equal(lookalikeOf(d, policy, k), null, d);
    }
    for (const d of ['example.com', 'mail.example.com', 'ｅｘａｍｐｌｅ.com' /* full width: the same domain once IDNA-mapped */]) {
      assert.equal(lookalikeOf(d, policy, k), null, d);
    }
  });

  it('short names: a couple of letters apart is another business, not a lookalike', async () => {
    for (const [a, b] of SHORT_NAMES) assert.equal(lookalikeOf(b, policy, await known(a)), null, `${b} vs known ${a}`);
  });

  it('mail providers and sending services are never lookalikes as senders', async () => {
    for (const [a, b] of PROVIDER_SENDERS) assert.equal(lookalikeOf(b, policy, await known(a)), null, `${b} vs known ${a}`);
    assert.equal(lookalikeOf('bounces.amazonses.com', policy, await known('amazon.co.jp')), null);
    // but a lookalike of a provider one corresponds with is one
    assert.ok(lookalikeOf('gmai1.com', policy, await known('gmail.com')));
  });

  it('businesses whose names only share a word stay apart; group companies with a business word too', async () => {
    const k = await known('ntt.co.jp', 'hitachi.co.jp', 'partner.example');
    for (const d of ['ntt-data.co.jp', 'hitachi-systems.com', 'hitachi-solutions.co.jp', 'partnership.example', 'party.example']) {
      assert.equal(lookalikeOf(d, policy, k), null, d);
    }
  });

  it("new mail: a correspondent's name under another suffix, or a letter from it, is another registration or business; in a reply it counts", async () => {
    const k = await known('bosch-partner.com', 'torihiki.co.jp');
    for (const [sender, kind] of [
      ['bosch-partner.de', 'suffix'],
      ['torihika.co.jp', 'edit'],
      ['toriihki.co.jp', 'edit'],
    ]) {
      assert.equal(lookalikeOf(sender, policy, k, false), null, `${sender} in new mail`);
      assert.equal(lookalikeOf(sender, policy, k, true)?.kind, kind, `${sender} in a reply`);
    }
    // the deliberate tricks count in new mail too, and every rule against an internal domain
    for (const [sender, kind] of [
      ['b0sch-partner.de', 'confusable'],
      ['xn--torihik-eza.co.jp', 'confusable'], // torihikí
      ['torihiki-jp.com', 'word'],
      ['tori-hiki.co.jp', 'hyphen'],
      ['torihiki.co.jp.secure-mail.test', 'embedded'],
      ['example.co', 'suffix'],
      ['exampel.com', 'edit'],
    ]) {
      assert.equal(lookalikeOf(sender, policy, k, false)?.kind, kind, `${sender} in new mail`);
    }
  });

  it('spoof.lookalike.trusted: a sister company under another suffix is not an impostor', async () => {
    const k = await known('example-partner.co.jp');
    assert.ok(lookalikeOf('example-partner.de', policy, k));
    const trusting = testPolicy({ spoof: { lookalike: { trusted: ['example-partner.de'] } } });
    assert.equal(lookalikeOf('example-partner.de', trusting, k), null);
    assert.equal(lookalikeOf('mail.example-partner.de', trusting, k), null);
  });

  it('a known domain that has been forgotten (past spoof.memoryTtl) is no target any more', async () => {
    const memory = new MemoryThreadMemory();
    await memory.update({ threads: [], bindings: [], addresses: [], infrastructure: [], domains: ['torihiki.co.jp'] }, 300);
    const k = await knownDomains(memory);
    assert.ok(lookalikeOf('torihiki-jp.com', policy, k));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(lookalikeOf('torihiki-jp.com', policy, k), null);
  });
});

// Whole messages: a thread with a partner, continued from a lookalike of the partner's domain whose
// quoted thread the attacker rewrote to the lookalike (no name conflict left for the other checks).
describe('lookalike: the signal in messages (inspect stage, thread memory)', () => {
  const LOOKALIKE: Record<Lang, string> = { en: 'partner-mail.example', ja: 'torihlki.co.jp' };
  const policy = testPolicy();

  async function withPartner(lang: Lang): Promise<StateBackend> {
    const state: StateBackend = { kind: 'memory' };
    const raw = buildMessage(originalMessage(lang)).toString('utf8');
    const headers = parseHeaderBlock(raw.slice(0, raw.indexOf('\r\n\r\n')));
    const { us, them } = PEOPLE[lang];
    const update = learnFromRelayed(
      { headers, envelope: { mailFrom: us.address, rcptTo: [them.address] }, client: { address: '127.0.0.1', helo: 'pc' }, policy },
      [],
    );
    await threadMemoryFor(state).update(update!, policy.spoof.memoryTtl);
    return state;
  }

  function fromLookalike(lang: Lang, reply: boolean, extra: Record<string, string> = {}) {
    const { us, them } = PEOPLE[lang];
    const fake = { name: them.name, address: `${them.address.split('@')[0]}@${LOOKALIKE[lang]}` };
    const body = `${lang === 'en' ? 'Please see the attached invoice.' : '添付の請求書をご確認ください。'}\n\n${quotedOriginal(lang, 'text', us, fake)}`;
    const spec = {
      from: display(fake),
      to: display(us),
      subject: reply ? `RE: ${SUBJECT[lang]}` : SUBJECT[lang],
      body: reply ? body : lang === 'en' ? 'Please see the attached invoice.' : '添付の請求書をご確認ください。',
      ...(reply ? { inReplyTo: 'their-own-7781@mail.lookalike.example' } : {}),
      extra,
    };
    return { bytes: buildMessage(spec), envelope: { mailFrom: fake.address, rcptTo: [us.address] } };
  }
  const client = { address: '203.0.113.9', helo: 'mail.lookalike.example' };

  for (const lang of ['en', 'ja'] as Lang[]) {
    it(`a reply from a lookalike of the partner's domain is quarantined on that signal (${lang})`, async () => {
      const state = await withPartner(lang);
      const m = fromLookalike(lang, true);
      const v = await runMessage(m.bytes, m.envelope, client, policy, { state, resolver: nxdomainResolver });
      assert.ok(symbols(v).includes('SPOOF_REPLY_LOOKALIKE_DOMAIN'), `${symbols(v).join(',')}`);
      assert.equal(v.action, 'quarantine');
      const detail = v.findings.find((f) => f.symbol === 'SPOOF_REPLY_LOOKALIKE_DOMAIN')!.detail;
      assert.match(detail ?? '', new RegExp(`imitates ${PEOPLE[lang].them.address.split('@')[1].replace(/\./g, '\\.')} \\(a known correspondent\\)`));
      // without the signal the same message passes: it is what decides
      const off = await runMessage(m.bytes, m.envelope, client, testPolicy({ spoof: { lookalike: { enabled: false } } }), {
        state: await withPartner(lang),
        resolver: nxdomainResolver,
      });
      assert.notEqual(off.action, 'quarantine', symbols(off).join(','));
    });
  }

  it('a new message (no reply marker) from a lookalike is tagged, with the lighter symbol', async () => {
    const state = await withPartner('en');
    const m = fromLookalike('en', false);
    const v = await runMessage(m.bytes, m.envelope, client, policy, { state, resolver: nxdomainResolver });
    assert.ok(symbols(v).includes('SPOOF_LOOKALIKE_DOMAIN'), symbols(v).join(','));
    assert.ok(!symbols(v).includes('SPOOF_REPLY_LOOKALIKE_DOMAIN'));
    assert.equal(v.action, 'tag');
  });

  it('a lookalike of the internal domain needs no memory at all (scan without state)', async () => {
    const bytes = buildMessage({ from: '"CEO" <ceo@example-jp.com>', to: 'alice.walker@example.com', subject: 'Urgent transfer', body: 'Please pay today.' });
    const v = await runMessage(bytes, { mailFrom: 'ceo@example-jp.com', rcptTo: ['alice.walker@example.com'] }, client, policy, { resolver: nxdomainResolver });
    const f = v.findings.find((x) => x.symbol === 'SPOOF_LOOKALIKE_DOMAIN');
    assert.ok(f, symbols(v).join(','));
    assert.match(f.detail ?? '', /example\.com \(an internal domain\): "jp" added/);
  });

  it('a genuine From with a Reply-To on a lookalike (replies go to the impostor)', async () => {
    const state = await withPartner('en');
    const { us, them } = PEOPLE.en;
    const bytes = buildMessage({
      from: display(them),
      to: display(us),
      subject: `RE: ${SUBJECT.en}`,
      body: 'Our bank details changed, see attached.',
      inReplyTo: 'x@partner.example',
      extra: { 'Reply-To': 'bob.smith@partnre.example' },
    });
    const v = await runMessage(bytes, { mailFrom: them.address, rcptTo: [us.address] }, { address: '198.51.100.10', helo: 'mail.partner.example' }, policy, {
      state,
      resolver: zoneResolver({ 'partner.example': { TXT: ['v=spf1 ip4:198.51.100.10 -all'] }, '_dmarc.partner.example': { TXT: ['v=DMARC1; p=reject'] } }),
    });
    const f = v.findings.find((x) => x.symbol === 'SPOOF_REPLY_LOOKALIKE_DOMAIN');
    assert.ok(f, symbols(v).join(','));
    assert.match(f.detail ?? '', /^Reply-To domain partnre\.example imitates partner\.example/);
    assert.equal(v.action, 'quarantine');
  });

  it('the genuine partner reply and a known correspondent with a close name pass', async () => {
    const state = await withPartner('en');
    const { us, them } = PEOPLE.en;
    const genuine = buildMessage({ from: display(them), to: display(us), subject: `RE: ${SUBJECT.en}`, body: 'Thanks, attached.', inReplyTo: 'orig@x' });
    const v = await runMessage(genuine, { mailFrom: them.address, rcptTo: [us.address] }, client, policy, { state, resolver: nxdomainResolver });
    assert.ok(!symbols(v).some((s) => s.includes('LOOKALIKE')), symbols(v).join(','));
    // the organisation has written to partner-mail.example as well: a correspondent of its own
    await threadMemoryFor(state).update(
      { threads: [], bindings: [], addresses: [], infrastructure: [], domains: ['partner-mail.example'] },
      policy.spoof.memoryTtl,
    );
    await new Promise((r) => setTimeout(r, 1100)); // the per-process copy of the known domains refreshes once a second
    const m = fromLookalike('en', true);
    const w = await runMessage(m.bytes, m.envelope, client, policy, { state, resolver: nxdomainResolver });
    assert.ok(!symbols(w).some((s) => s.includes('LOOKALIKE')), symbols(w).join(','));
  });

  it('memory unreachable: lookalikes of internal domains still count, known ones are skipped, nothing breaks', async () => {
    const down: ThreadMemory = {
      lookup: () => Promise.reject(new ThreadMemoryUnavailable('connection refused')),
      update: () => Promise.resolve(undefined),
      knownDomains: () => Promise.reject(new ThreadMemoryUnavailable('connection refused')),
      forgetInfrastructure: () => Promise.reject(new ThreadMemoryUnavailable('connection refused')),
    };
    const k = await knownDomains(down);
    assert.ok(lookalikeOf('examp1e.com', policy, k));
    assert.equal(lookalikeOf('torihlki.co.jp', policy, k), null);
  });
});
