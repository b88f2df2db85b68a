// Reply-chain spoofing: markers, names, the four hijack shapes and their genuine counterparts in
// English and Japanese, text and HTML, several charsets; memory signals; authentication offline.
import assert from 'node:assert/strict';
import { analyzeSpoof } from '../../src/inspect/spoof/index.js';
import { authenticateMessage, cachingResolver } from '../../src/inspect/spoof/auth.js';
import { htmlToText, quotedThread, subjectPrefix } from '../../src/inspect/spoof/markers.js';
import { nameKeys } from '../../src/inspect/spoof/name-keys.js';
import { addressesInName, orgDomain } from '../../src/inspect/spoof/names.js';
import { MemoryThreadMemory, ThreadMemoryUnavailable, type ThreadMemory } from '../../src/state/thread-memory.js';
import type { StateBackend } from '../../src/state/index.js';
import { runCase, runMessage, symbols, testPolicy } from '../fixtures/mail/run.js';
import {
  buildMessage,
  FIXTURE_ZONE,
  genuine,
  GENUINE_SHAPES,
  hijack,
  HIJACK_SHAPES,
  ORIGINAL_ID,
  originalMessage,
  PEOPLE,
  type Format,
  type Lang,
} from '../fixtures/mail/threads.js';
import { nxdomainResolver, zoneResolver } from '../fixtures/mail/zone.js';

const flagged = (s: string[]) => s.includes('SPOOF_HIJACK') || s.includes('SPOOF_SUSPECT');

describe('spoof: reply markers', () => {
  it('subject prefixes in many languages, stacked, full-width, behind a list tag', () => {
    for (const s of [
      'Re: x',
      'RE: RE: x',
      'AW: x',
      'SV: x',
      'VS: x',
      'RIF: x',
      'ODP: x',
      'Antw: x',
      '回复: x',
      '答复：x',
      '返信: x',
      'Ｒｅ：x',
      '[dev] Re: x',
      'Re[2]: x',
      'RES: x',
      'YNT: x',
    ]) {
      assert.equal(subjectPrefix(s)?.kind, 'reply', s);
    }
    for (const s of ['Fwd: x', 'FW: x', 'WG: x', 'TR: x', '転送: x', '转发: x', 'Enc: x']) assert.equal(subjectPrefix(s)?.kind, 'forward', s);
    assert.equal(subjectPrefix('RE: RE: FW: x')?.depth, 3);
    for (const s of ['Report: x', 'Regarding the invoice', 'Invoice 12', 'r: lower', 'i: think', undefined]) assert.equal(subjectPrefix(s), null, String(s));
  });

  it('quoted blocks: Original Message, From/Sent/To/Subject, Japanese Outlook, On … wrote:, Gmail Japanese, nested >', () => {
    const en = quotedThread(
      'hi\n\n-----Original Message-----\nFrom: Bob Smith [mailto:bob@partner.example]\nSent: Monday\nTo: Alice <alice@example.com>\nSubject: x\n',
    );
    assert.deepEqual(
      en.bindings.map((b) => [b.name, b.address]),
      [
        ['bob smith', 'bob@partner.example'],
        // a first name alone says nothing about who someone is: no key
      ],
    );
    const de = quotedThread('Von: Müller, Jörg <joerg@firma.example>\nGesendet: Montag\nAn: x@y.example\nBetreff: z');
    assert.deepEqual(de.bindings[0], { name: 'jorg muller', address: 'joerg@firma.example', display: 'Müller, Jörg' });
    const ja = quotedThread('差出人: 山田 太郎 <yamada@torihiki.co.jp>\n送信日時: 2024年6月3日 10:02\n宛先: 鈴木 花子 <hanako@example.com>\n件名: 見積もり');
    assert.equal(ja.bindings[0].name, '山田太郎');
    const on = quotedThread('> On Mon, 3 Jun 2024 at 10:02, Bob Smith <bob@partner.example> wrote:\n> > hello');
    assert.deepEqual(
      on.bindings.map((b) => b.address),
      ['bob@partner.example'],
    );
    const gmailJa = quotedThread('2024年6月3日(月) 10:02 山田太郎 <yamada@torihiki.co.jp>:\n> こんにちは');
    assert.deepEqual(
      gmailJa.bindings.map((b) => [b.name, b.address]),
      [['山田太郎', 'yamada@torihiki.co.jp']],
    );
    const html = quotedThread(htmlToText('<p><b>From:</b> Bob Smith &lt;bob@partner.example&gt;<br><b>Sent:</b> Monday<br><b>To:</b> a@example.com</p>'));
    assert.equal(html.bindings[0].address, 'bob@partner.example');
    assert.equal(quotedThread('From: the sales team we met\nand nothing else').blocks.length, 0);
  });
});

describe('spoof: names and domains', () => {
  it('one key per person: case, diacritics, Last, First, titles, full-width, CJK spaces and honorifics', () => {
    const key = nameKeys('Bob Smith');
    for (const n of ['BOB SMITH', 'Smith, Bob', 'Dr. Bob Smith', 'Mr Bob  Smith', 'Ｂｏｂ　Ｓｍｉｔｈ', '"Bob Smith"', 'Bob Smith (Sales)'])
      assert.deepEqual(nameKeys(n), key, n);
    assert.deepEqual(nameKeys('José Álvarez'), nameKeys('jose alvarez'));
    assert.deepEqual(nameKeys('山田 太郎'), nameKeys('山田太郎様'));
    assert.deepEqual(nameKeys('Info'), []);
    assert.deepEqual(addressesInName('"bob@partner.example via Shop"'), ['bob@partner.example']);
  });

  it('organisational domains from the public suffix list', () => {
    assert.equal(orgDomain('mail.partner.example'), 'partner.example');
    assert.equal(orgDomain('a.b.torihiki.co.jp'), 'torihiki.co.jp');
    assert.equal(orgDomain('smtp.example.co.uk'), 'example.co.uk');
  });
});

describe('spoof: hijack shapes and genuine counterparts (no memory, offline DNS with DMARC records)', () => {
  const resolver = zoneResolver(FIXTURE_ZONE);
  const policy = testPolicy();
  for (const lang of ['en', 'ja'] as Lang[]) {
    for (const format of ['text', 'html'] as Format[]) {
      for (const shape of HIJACK_SHAPES) {
        it(`hijack ${shape} (${lang}, ${format}) is quarantined`, async () => {
          const v = await runCase(hijack(shape, lang, format), policy, { resolver });
          assert.ok(symbols(v).includes('SPOOF_HIJACK'), `${symbols(v).join(',')}: ${v.findings.map((f) => f.detail).join(' | ')}`);
          assert.equal(v.action, 'quarantine');
        });
      }
      for (const shape of GENUINE_SHAPES) {
        it(`genuine ${shape} (${lang}, ${format}) is relayed`, async () => {
          const v = await runCase(genuine(shape, lang, format), policy, { resolver });
          assert.ok(!flagged(symbols(v)), `${symbols(v).join(',')}: ${v.findings.map((f) => f.detail).join(' | ')}`);
          assert.equal(v.action, 'relay');
        });
      }
    }
  }

  it('decodes Shift_JIS and ISO-2022-JP bodies in the one MIME pass', async () => {
    for (const charset of ['shift_jis', 'iso-2022-jp'] as const) {
      const v = await runCase(hijack('name-only', 'ja', 'text', charset), policy, { resolver });
      assert.match(v.text ?? '', /差出人: 鈴木 花子/);
      assert.ok(symbols(v).includes('SPOOF_THREAD_NAME_CONFLICT'), charset);
    }
  });

  it('a plain new message is not read as a thread: quoted-looking lines in its one text part are no reply', async () => {
    const bytes = buildMessage({
      from: '"Bob" <bob@partner.example>',
      to: 'a@example.com',
      subject: 'Hello',
      body: 'From: Bob <bob@elsewhere.example>\nSent: today\nTo: z\nSubject: old\n\nhi',
    });
    const v = await runMessage(bytes, { mailFrom: 'bob@partner.example', rcptTo: ['a@example.com'] }, { address: '192.0.2.1', helo: 'h' }, policy, {
      resolver,
    });
    // the MIME walk reads every message (a text message may hide a document), the thread checks do not take it as a reply
    assert.match(v.text ?? '', /^From: Bob/);
    assert.deepEqual(
      symbols(v).filter((s) => /THREAD|REPLY/.test(s)),
      [],
    );
  });

  it('a macro attachment next to a spoof signal boosts it', async () => {
    const c = hijack('real-from-other-envelope', 'en', 'text');
    const v = await runCase(c, testPolicy({ spoof: { authentication: false } }), {});
    assert.ok(!symbols(v).includes('SPOOF_HIJACK'), 'without DMARC and attachment: suspect only');
    assert.ok(symbols(v).includes('SPOOF_SUSPECT'));
  });

  it('an address in the display name naming the recipient organisation is strong on its own', async () => {
    const bytes = buildMessage({ from: '"alice.walker@example.com" <x@elsewhere.example>', to: 'alice.walker@example.com', subject: 'Payroll', body: 'hi' });
    const v = await runMessage(bytes, { mailFrom: 'x@elsewhere.example', rcptTo: ['alice.walker@example.com'] }, { address: '192.0.2.1', helo: 'h' }, policy, {
      resolver,
    });
    assert.ok(symbols(v).includes('SPOOF_DISPLAY_NAME_RCPT_DOMAIN'));
    assert.equal(v.action, 'quarantine');
  });
});

describe('spoof: thread memory signals', () => {
  const resolver = nxdomainResolver;
  async function withThread(): Promise<{ state: StateBackend; policy: ReturnType<typeof testPolicy> }> {
    const state: StateBackend = { kind: 'memory' };
    const policy = testPolicy();
    const { threadMemoryFor } = await import('../../src/state/thread-memory.js');
    const { learnFromRelayed } = await import('../../src/inspect/spoof/index.js');
    const { parseHeaderBlock } = await import('../../src/message/parsed.js');
    const raw = buildMessage(originalMessage('en')).toString('utf8');
    const headers = parseHeaderBlock(raw.slice(0, raw.indexOf('\r\n\r\n')));
    const update = learnFromRelayed(
      { headers, envelope: { mailFrom: PEOPLE.en.us.address, rcptTo: [PEOPLE.en.them.address] }, client: { address: '127.0.0.1', helo: 'pc' }, policy },
      [],
    );
    assert.ok(update && update.threads.length === 1 && update.threads[0].messageId === ORIGINAL_ID);
    await threadMemoryFor(state).update(update, policy.spoof.memoryTtl);
    return { state, policy };
  }

  it('a participant reply gets the genuine-reply bonus', async () => {
    const { state, policy } = await withThread();
    const v = await runCase(genuine('participant-reply', 'en', 'text'), policy, { state, resolver });
    assert.ok(symbols(v).includes('SPOOF_THREAD_PARTICIPANT'));
    assert.equal(v.action, 'relay');
  });

  it('a reply to our thread with the stolen references from an outsider, with the participant name: impersonation', async () => {
    const { state, policy } = await withThread();
    const c = hijack('stolen-references', 'en', 'text');
    c.spec.body = 'See the attached invoice.'; // no quoted thread: only memory can tell
    const v = await runCase(c, policy, { state, resolver });
    assert.ok(symbols(v).includes('SPOOF_THREAD_IMPERSONATION'), symbols(v).join(','));
    assert.equal(v.action, 'quarantine');
  });

  it('a known correspondent name on a new address in another organisation', async () => {
    const { state, policy } = await withThread();
    const c = hijack('name-only', 'en', 'text');
    c.spec.body = 'See the attached invoice.';
    const v = await runCase(c, policy, { state, resolver });
    assert.ok(symbols(v).includes('SPOOF_KNOWN_NAME_NEW_ADDRESS'), symbols(v).join(','));
  });

  it('memory unreachable: STATE_UNAVAILABLE, other signals still run; fail mode closed defers', async () => {
    const down: ThreadMemory = {
      lookup: () => Promise.reject(new ThreadMemoryUnavailable('connection refused')),
      update: () => Promise.resolve(undefined),
      knownDomains: () => Promise.reject(new ThreadMemoryUnavailable('connection refused')),
      forgetInfrastructure: () => Promise.reject(new ThreadMemoryUnavailable('connection refused')),
    };
    const c = hijack('name-only', 'en', 'text');
    const input = {
      headers: [] as { name: string; value: string }[],
      envelope: { mailFrom: c.mailFrom, rcptTo: c.rcptTo },
      client: { address: '192.0.2.1', helo: 'h' },
      findings: [],
      policy: testPolicy({ spoof: { authentication: false } }),
    };
    const { parseHeaderBlock } = await import('../../src/message/parsed.js');
    const raw = buildMessage(c.spec).toString('utf8');
    input.headers = parseHeaderBlock(raw.slice(0, raw.indexOf('\r\n\r\n')));
    const open = await analyzeSpoof({ ...input, memory: down, failMode: 'open', text: 'From: Bob Smith <bob.smith@partner.example>\nSent: x\nTo: y' });
    assert.deepEqual(
      open.findings.map((f) => f.symbol).filter((s) => s.startsWith('STATE')),
      ['STATE_UNAVAILABLE'],
    );
    assert.ok(open.findings.some((f) => f.symbol === 'SPOOF_THREAD_NAME_CONFLICT'));
    const closed = await analyzeSpoof({ ...input, memory: down, failMode: 'closed' });
    assert.ok(closed.findings.some((f) => f.symbol === 'STATE_FAIL_CLOSED'));
  });

  it('outbound mail with a From of another organisation than its envelope', async () => {
    const policy = testPolicy();
    const bytes = buildMessage({ from: '"CEO" <ceo@other-corp.example>', to: 'x@partner.example', subject: 'Invoice', body: 'pay' });
    const v = await runMessage(bytes, { mailFrom: 'pc17@example.com', rcptTo: ['x@partner.example'] }, { address: '127.0.0.1', helo: 'pc17' }, policy, {});
    assert.ok(symbols(v).includes('SPOOF_OUTBOUND_FROM_MISMATCH'));
  });
});

describe('spoof: authentication offline', () => {
  it('SPF, DMARC from a zone resolver; a SERVFAIL is temperror; a hanging DNS times out', async () => {
    const msg = buildMessage({ from: '"Bob Smith" <bob.smith@partner.example>', to: 'a@example.com', subject: 'x', body: 'y' });
    const ok = await authenticateMessage(msg, {
      sender: 'bob.smith@partner.example',
      ip: '198.51.100.10',
      helo: 'mail.partner.example',
      mta: 'mx.test',
      resolver: zoneResolver(FIXTURE_ZONE),
      timeoutMs: 500,
    });
    assert.equal(ok.spf, 'pass');
    assert.equal(ok.dmarc?.result, 'pass');
    const bad = await authenticateMessage(msg, {
      sender: 'kurt@hacked-shop.example',
      ip: '203.0.113.66',
      helo: 'h',
      mta: 'mx.test',
      resolver: zoneResolver(FIXTURE_ZONE),
      timeoutMs: 500,
    });
    assert.equal(bad.spf, 'pass');
    assert.equal(bad.dmarc?.result, 'fail');
    assert.equal(bad.dmarc?.policy, 'reject');
    const fail = await authenticateMessage(msg, {
      sender: 'bob.smith@partner.example',
      ip: '198.51.100.10',
      helo: 'h',
      mta: 'mx.test',
      resolver: zoneResolver(FIXTURE_ZONE, { fail: ['partner.example'] }),
      timeoutMs: 500,
    });
    assert.ok(fail.temperror);
    const started = Date.now();
    const hang = await authenticateMessage(msg, {
      sender: 'bob.smith@partner.example',
      ip: '198.51.100.10',
      helo: 'h',
      mta: 'mx.test',
      resolver: cachingResolver(zoneResolver(FIXTURE_ZONE, { hang: ['partner.example', '_dmarc.partner.example'] }), 200),
      timeoutMs: 200,
    }).catch((err: Error) => ({ temperror: true, err }));
    assert.ok(hang.temperror);
    assert.ok(Date.now() - started < 2000);
  });

  it('the DNS cache answers a repeated query without asking again', async () => {
    const inner = zoneResolver(FIXTURE_ZONE);
    const cached = cachingResolver(inner, 500);
    await cached('partner.example', 'TXT');
    await cached('partner.example', 'TXT');
    await cached('nowhere.example', 'TXT').catch(() => undefined);
    await cached('nowhere.example', 'TXT').catch(() => undefined);
    assert.equal(inner.queries.length, 2);
  });
});

// the memory class is exercised by the conformance suite (spoof-memory.test.ts); keep the import used
void MemoryThreadMemory;
