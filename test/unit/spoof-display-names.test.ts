// Encoded display names: the header's structure is parsed first, then the RFC 2047 words of the
// display name are decoded. A display name that decodes to "Name <real@addr>" (or "(real@addr)",
// "[real@addr]", the bare address, or the old "addr (Name <real@addr>)" comment form) stays
// display-name text: the sender's address is the one outside it, and the address inside feeds
// SPOOF_DISPLAY_NAME_ADDRESS. Each of the five forms plain and encoded (B and Q, UTF-8 and ISO-2022-JP,
// whole, split, inside quotes), through the real inspect stage.
import assert from 'node:assert/strict';
import { parseHeaderBlock } from '../../src/message/parsed.js';
import { addressesInName, parseMailboxes } from '../../src/inspect/spoof/names.js';
import { learnFromRelayed } from '../../src/inspect/spoof/index.js';
import type { StateBackend } from '../../src/state/index.js';
import { threadMemoryFor } from '../../src/state/thread-memory.js';
import { DISPLAY_FORMS, displayNameVariants, encodedPhrase, type WordCharset, type WordEncoding } from '../fixtures/mail/display-names.js';
import { runMessage, symbols, testPolicy } from '../fixtures/mail/run.js';
import { ATTACKER, buildMessage, FIXTURE_ZONE, hijack, originalMessage, PEOPLE } from '../fixtures/mail/threads.js';
import { nxdomainResolver, zoneResolver } from '../fixtures/mail/zone.js';

const inbound = { address: '203.0.113.66', helo: 'mail.hacked-shop.example' };
const resolver = zoneResolver(FIXTURE_ZONE);
const detailOf = (v: { findings: { symbol: string; detail?: string }[] }, symbol: string) => v.findings.find((f) => f.symbol === symbol)?.detail ?? '';

describe('spoof: display names are parsed structure first, then decoded', () => {
  it('the family covers the five forms, each plain and in every encoding', () => {
    const labels = displayNameVariants('Bob Smith', 'bob@partner.example', ATTACKER).map((v) => v.label);
    for (const form of DISPLAY_FORMS) {
      assert.ok(labels.includes(`${form}, plain`), form);
      for (const e of ['B utf-8', 'Q utf-8', 'B iso-2022-jp', 'Q iso-2022-jp']) assert.ok(labels.includes(`${form}, ${e}`), `${form}, ${e}`);
    }
  });

  for (const them of [PEOPLE.en.them, PEOPLE.ja.them]) {
    it(`"${them.name}" with ${them.address} inside the display name: the address outside is the sender's (every form and encoding)`, () => {
      const wrong: string[] = [];
      for (const v of displayNameVariants(them.name, them.address, ATTACKER)) {
        const [field] = parseHeaderBlock(`From: ${v.from}`);
        assert.equal(field.raw, v.from, 'the raw field is kept next to the decoded one');
        const boxes = parseMailboxes(field.raw);
        const ok =
          boxes.length === 1 &&
          boxes[0].address === ATTACKER &&
          addressesInName(boxes[0].name).includes(them.address) &&
          (v.label.startsWith('bare') || boxes[0].name.includes(them.name.split(' ')[0]));
        if (!ok) wrong.push(`${v.label}: ${v.from} -> ${JSON.stringify(boxes)}`);
      }
      assert.deepEqual(wrong, []);
    });
  }

  it('the decoded value (what other analyzers read) would have taken the inner address as the sender: the raw one does not', () => {
    const from = `${encodedPhrase(`${PEOPLE.en.them.name} <${PEOPLE.en.them.address}>`, 'utf-8', 'B')} <${ATTACKER}>`;
    const [field] = parseHeaderBlock(`From: ${from}`);
    assert.equal(parseMailboxes(field.value)[0].address, PEOPLE.en.them.address, 'decoding first loses the structure');
    assert.equal(parseMailboxes(field.raw)[0].address, ATTACKER);
  });

  for (const lang of ['en', 'ja'] as const) {
    const { us, them } = PEOPLE[lang];
    it(`a new message with ${them.address} in the display name (${lang}): SPOOF_DISPLAY_NAME_ADDRESS names the real sender, every variant`, async () => {
      const policy = testPolicy();
      const wrong: string[] = [];
      for (const v of displayNameVariants(them.name, them.address, ATTACKER)) {
        const bytes = buildMessage({ from: v.from, to: us.address, subject: 'Invoice', body: 'Please see the invoice.' });
        const r = await runMessage(bytes, { mailFrom: ATTACKER, rcptTo: [us.address] }, inbound, policy, { resolver });
        const detail = detailOf(r, 'SPOOF_DISPLAY_NAME_ADDRESS');
        if (!detail.includes(`carries ${them.address} but From is ${ATTACKER}`)) wrong.push(`${v.label}: ${symbols(r).join(',')} ${detail}`);
      }
      assert.deepEqual(wrong, []);
    });

    it(`the recipient's own address in the display name (${lang}) is quarantined on its own, every variant`, async () => {
      const policy = testPolicy();
      const wrong: string[] = [];
      for (const v of displayNameVariants(us.name, us.address, ATTACKER)) {
        const bytes = buildMessage({ from: v.from, to: us.address, subject: 'Payroll', body: 'Update your details.' });
        const r = await runMessage(bytes, { mailFrom: ATTACKER, rcptTo: [us.address] }, inbound, policy, { resolver });
        if (!symbols(r).includes('SPOOF_DISPLAY_NAME_RCPT_DOMAIN') || r.action !== 'quarantine') wrong.push(`${v.label}: ${symbols(r).join(',')} ${r.action}`);
      }
      assert.deepEqual(wrong, []);
    });

    it(`a reply to our remembered thread with the participant's address in an encoded display name (${lang}) is quarantined, never a participant`, async () => {
      const policy = testPolicy();
      const state: StateBackend = { kind: 'memory' };
      const raw = buildMessage(originalMessage(lang)).toString('utf8');
      const update = learnFromRelayed(
        {
          headers: parseHeaderBlock(raw.slice(0, raw.indexOf('\r\n\r\n'))),
          envelope: { mailFrom: us.address, rcptTo: [them.address] },
          client: { address: '127.0.0.1', helo: 'pc' },
          policy,
        },
        [],
      );
      await threadMemoryFor(state).update(update!, policy.spoof.memoryTtl);
      const wrong: string[] = [];
      for (const v of displayNameVariants(them.name, them.address, ATTACKER)) {
        const c = hijack('stolen-references', lang, 'text');
        c.spec.from = v.from;
        const r = await runMessage(buildMessage(c.spec), { mailFrom: ATTACKER, rcptTo: [us.address] }, inbound, policy, { resolver: nxdomainResolver, state });
        const s = symbols(r);
        if (
          !s.includes('SPOOF_THREAD_IMPERSONATION') ||
          !s.includes('SPOOF_THREAD_NAME_CONFLICT') ||
          s.includes('SPOOF_THREAD_PARTICIPANT') ||
          r.action !== 'quarantine'
        )
          wrong.push(`${v.label}: ${s.join(',')} ${r.action}`);
      }
      assert.deepEqual(wrong, []);
    });
  }

  describe('genuine near-neighbours stay quiet', () => {
    const encodings: [WordCharset, WordEncoding][] = [
      ['utf-8', 'B'],
      ['utf-8', 'Q'],
      ['iso-2022-jp', 'B'],
      ['iso-2022-jp', 'Q'],
    ];

    it('an encoded Japanese name without an address is decoded and carries none', () => {
      for (const [charset, encoding] of encodings) {
        for (const split of [false, true]) {
          const from = `${encodedPhrase('山田 太郎', charset, encoding, split)} <yamada@torihiki.co.jp>`;
          assert.deepEqual(parseMailboxes(from), [{ name: '山田 太郎', address: 'yamada@torihiki.co.jp' }], from);
        }
      }
    });

    it("the sender's own address (or a colleague's in the same organisation) written into the name is no signal", async () => {
      const policy = testPolicy();
      const them = PEOPLE.ja.them;
      const names = [
        ...encodings.map(([charset, encoding]) => encodedPhrase(`${them.name} <${them.address}>`, charset, encoding)),
        `"${them.name} (sato@torihiki.co.jp)"`,
        `${encodedPhrase(`${them.name} [mailto:${them.address}]`, 'iso-2022-jp', 'B')}`,
      ];
      for (const name of names) {
        const bytes = buildMessage({ from: `${name} <${them.address}>`, to: PEOPLE.ja.us.address, subject: '見積もり', body: 'お世話になっております。' });
        const r = await runMessage(
          bytes,
          { mailFrom: them.address, rcptTo: [PEOPLE.ja.us.address] },
          { address: '198.51.100.20', helo: 'mail.torihiki.co.jp' },
          policy,
          {
            resolver,
          },
        );
        assert.deepEqual(
          symbols(r).filter((s) => s.startsWith('SPOOF_')),
          [],
          name,
        );
        assert.equal(r.action, 'relay');
      }
    });
  });
});
