// One person, many written forms (issue 12 §1): name keys per mailbox (titles and honorifics dropped,
// bilingual forms split, "X via Y" reduced, family/given order), forms bound through a shared address
// in the quoted thread and in the thread memory, and the real address read from quoted signatures.
import assert from 'node:assert/strict';
import { parseHeaderBlock } from '../../src/message/parsed.js';
import { quotedThread } from '../../src/inspect/spoof/markers.js';
import { nameForms, nameKeys } from '../../src/inspect/spoof/name-keys.js';
import type { StateBackend } from '../../src/state/index.js';
import { fromField, KENTA, MISAKI, writtenForms, type JapanesePerson } from '../fixtures/mail/names.js';
import { runAndLearn, runMessage, symbols, testPolicy } from '../fixtures/mail/run.js';
import { ATTACKER, buildMessage, PEOPLE } from '../fixtures/mail/threads.js';
import { nxdomainResolver } from '../fixtures/mail/zone.js';

const us = PEOPLE.ja.us;
const kanjiKey = (p: JapanesePerson) => `${p.family}${p.given}`;
const romajiKey = (p: JapanesePerson) =>
  [p.familyRomaji, p.givenRomaji]
    .map((s) => s.toLowerCase())
    .sort()
    .join(' ');
const attackerClient = { address: '203.0.113.66', helo: 'mail.hacked-shop.example' };
const partnerClient = { address: '198.51.100.20', helo: 'mail.torihiki.co.jp' };
const ourClient = { address: '127.0.0.1', helo: 'pc17.example.com' };

/** A Japanese reply whose quoted message is headed by `quotedFrom` and ends with `signature` lines. */
function replyBody(quotedFrom: string, signature: string[] = [], lure = '添付の請求書をご確認ください。'): string {
  return [
    lure,
    '',
    `差出人: ${quotedFrom}`,
    '送信日時: 2024年6月3日 10:02',
    `宛先: ${us.name} <${us.address}>`,
    '件名: 見積もりの件',
    '',
    '鈴木様',
    'お見積もりを添付いたします。',
    '',
    ...signature,
  ].join('\n');
}

async function run(
  from: string,
  mailFrom: string,
  body: string,
  opts: { state?: StateBackend; extra?: Record<string, string>; client?: typeof attackerClient } = {},
) {
  const bytes = buildMessage({
    from,
    to: `${us.name} <${us.address}>`,
    subject: 'Re: 見積もりの件',
    body,
    inReplyTo: 'unknown-thread@mail.example.com',
    references: ['unknown-thread@mail.example.com'],
    ...(opts.extra ? { extra: opts.extra } : {}),
  });
  return runMessage(bytes, { mailFrom, rcptTo: [us.address] }, opts.client ?? attackerClient, testPolicy(), {
    resolver: nxdomainResolver,
    ...(opts.state ? { state: opts.state } : {}),
  });
}

/** Relays `bytes` as the gateway would and lets the memory learn from it (the message must be relayed). */
async function relayAndLearn(state: StateBackend, bytes: Buffer, envelope: { mailFrom: string; rcptTo: string[] }, client: typeof ourClient) {
  const v = await runAndLearn(bytes, envelope, client, testPolicy(), { state, resolver: nxdomainResolver });
  assert.equal(v.action, 'relay', v.findings.map((f) => `${f.symbol} ${f.detail}`).join(' | '));
  return v.update;
}

describe('spoof: one person, many written forms', () => {
  describe('name keys', () => {
    for (const form of writtenForms(KENTA)) {
      it(`${form.label}: "${form.display}"`, () => {
        const { keys, via } = nameForms(form.display);
        const expected = form.scripts.map((s) => (s === 'kanji' ? kanjiKey(KENTA) : romajiKey(KENTA)));
        assert.deepEqual([...keys].sort(), [...expected].sort());
        assert.equal(!!via, !!form.via);
      });
    }

    it('another person with the same family name, a surname alone, a department or a company give no shared key', () => {
      assert.ok(!nameKeys('長谷川 美咲').includes(kanjiKey(KENTA)));
      assert.ok(!nameKeys('Misaki Hasegawa').includes(romajiKey(KENTA)));
      // a two-character surname alone is shared by too many people (a three-character one may be a full name: 林健太)
      for (const n of [
        '山田',
        '山田様',
        '山田部長',
        '営業部',
        '株式会社トリヒキ',
        'カスタマーサポートセンター',
        'トリヒキ商事 営業部',
        'Hasegawa',
        'Sales Team',
        'Customer Service',
      ])
        assert.deepEqual(nameKeys(n), [], n);
      // family names that end like a title or a department are names
      assert.deepEqual(nameKeys('阿部 太郎'), ['阿部太郎']);
      assert.deepEqual(nameKeys('服部 課長'), [], 'a family name and a title: who, of the many 服部?');
      assert.deepEqual(nameKeys('林 薫'), ['林薫'], 'a two-character full name, written with its space');
      // voiced kana are not folded into unvoiced ones
      assert.notDeepEqual(nameKeys('さとう はなこ'), nameKeys('ざとう はなこ'));
    });
  });

  describe('quoted thread: bindings per key, real addresses from signatures', () => {
    it('a bilingual quoted From binds both keys to its address', () => {
      const q = quotedThread(replyBody(`${KENTA.family} ${KENTA.given} / Kenta Hasegawa <${KENTA.address}>`));
      assert.deepEqual(
        q.bindings
          .filter((b) => b.address === KENTA.address)
          .map((b) => b.name)
          .sort(),
        [romajiKey(KENTA), kanjiKey(KENTA)].sort(),
      );
    });

    for (const [label, lines] of [
      ['E-mail:', ['--', `${KENTA.family} ${KENTA.given}`, '株式会社トリヒキ 営業部', `E-mail: ${KENTA.address}`, 'TEL: 03-1234-5678']],
      ['Mail (full-width colon)', ['━━━━━━━━', `${KENTA.family} ${KENTA.given}`, `Mail：${KENTA.address}`]],
      ['メール:', ['―――', `${KENTA.family}\u3000${KENTA.given}`, `メール: <${KENTA.address}>`]],
      ['■Ｅメール (full-width)', ['*****', `■Ｅメール：${KENTA.address.replace(/[a-z@.]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0))}`]],
    ] as [string, string[]][]) {
      it(`the signature's ${label} line gives the real address of a quoted author shown by name only`, () => {
        const q = quotedThread(replyBody(`${KENTA.family} ${KENTA.given}`, lines));
        assert.equal(q.blocks[0].signature, KENTA.address);
        assert.deepEqual(q.blocks[0].from, [{ name: `${KENTA.family} ${KENTA.given}`, address: KENTA.address }]);
        assert.ok(q.bindings.some((b) => b.name === kanjiKey(KENTA) && b.address === KENTA.address));
      });
    }

    it('a signature address of the same organisation binds as an alias; one of another organisation does not', () => {
      const alias = quotedThread(replyBody(`${KENTA.family} ${KENTA.given} <${KENTA.address}>`, [`E-mail: k.hasegawa@torihiki.co.jp`]));
      assert.ok(alias.bindings.some((b) => b.name === kanjiKey(KENTA) && b.address === 'k.hasegawa@torihiki.co.jp'));
      const other = quotedThread(replyBody(`${KENTA.family} ${KENTA.given} <${KENTA.address}>`, [`E-mail: ${ATTACKER}`]));
      assert.ok(!other.bindings.some((b) => b.address === ATTACKER));
      // the reply's own signature (above the quote) is not a quoted author's
      const own = quotedThread(`本文\n--\nE-mail: ${ATTACKER}\n\n` + replyBody(`${KENTA.family} ${KENTA.given}`));
      assert.ok(!own.bindings.some((b) => b.address === ATTACKER));
      assert.equal(own.blocks[0].from[0].address, '');
    });
  });

  describe('SPOOF_THREAD_NAME_CONFLICT across written forms (no memory)', () => {
    const quoted = replyBody(`${KENTA.family} ${KENTA.given} <${KENTA.address}>`, [
      '--',
      `${KENTA.givenRomaji} ${KENTA.familyRomaji}`,
      `E-mail: ${KENTA.address}`,
    ]);
    for (const form of writtenForms(KENTA).filter((f) => !f.via)) {
      it(`the attacker writes "${form.display}" (${form.label})`, async () => {
        // the quoted thread shows Kenta in kanji; his romaji form is bound through his signature's address
        const body = form.scripts.includes('kanji') ? quoted : replyBody(`${KENTA.givenRomaji} ${KENTA.familyRomaji} <${KENTA.address}>`);
        const v = await run(fromField(form.display, ATTACKER), ATTACKER, body);
        assert.ok(symbols(v).includes('SPOOF_THREAD_NAME_CONFLICT'), `${symbols(v).join(',')}: ${v.findings.map((f) => f.detail).join(' | ')}`);
        assert.equal(v.action, 'quarantine');
      });
    }

    it('the quoted header shows only a name; the signature gives the address the attacker is not', async () => {
      const v = await run(
        fromField(`${KENTA.family} ${KENTA.given}`, ATTACKER),
        ATTACKER,
        replyBody(`${KENTA.family} ${KENTA.given}`, ['--', `E-mail: ${KENTA.address}`]),
      );
      assert.ok(symbols(v).includes('SPOOF_THREAD_NAME_CONFLICT'), symbols(v).join(','));
      assert.match(v.findings.find((f) => f.symbol === 'SPOOF_THREAD_NAME_CONFLICT')?.detail ?? '', new RegExp(KENTA.address));
    });

    it('near-neighbours: the same person from his own address, a namesake of another organisation, a list rewriting From', async () => {
      const own = await run(fromField('Kenta Hasegawa', KENTA.address), KENTA.address, quoted, { client: partnerClient });
      assert.ok(!symbols(own).includes('SPOOF_THREAD_NAME_CONFLICT'), symbols(own).join(','));
      const namesake = await run(fromField(`${MISAKI.family} ${MISAKI.given}`, MISAKI.address), MISAKI.address, quoted, {
        client: { address: '192.0.2.40', helo: 'mx.other-corp.example' },
      });
      assert.ok(!symbols(namesake).includes('SPOOF_THREAD_NAME_CONFLICT'), symbols(namesake).join(','));
      const viaList = await run(fromField(`${KENTA.family} ${KENTA.given} via bukai`, 'bukai@lists.listhost.org'), 'bukai-bounces@lists.listhost.org', quoted, {
        client: { address: '192.0.2.50', helo: 'lists.listhost.org' },
        extra: { 'List-Id': '<bukai.lists.listhost.org>', 'List-Post': '<mailto:bukai@lists.listhost.org>' },
      });
      assert.ok(!symbols(viaList).some((s) => /NAME_CONFLICT|HIJACK|SUSPECT/.test(s)), symbols(viaList).join(','));
      assert.equal(viaList.action, 'relay');
      // the same "via" display name without any list evidence is the attacker's own address: the name counts
      const fakeVia = await run(fromField(`${KENTA.family} ${KENTA.given} via bukai`, ATTACKER), ATTACKER, quoted);
      assert.ok(symbols(fakeVia).includes('SPOOF_THREAD_NAME_CONFLICT'), symbols(fakeVia).join(','));
    });

    it('a quoted "X via RELAY" <relay address> binds nothing: X answering from his own address is no conflict', async () => {
      for (const quotedFrom of [
        `Kenta Hasegawa via B4 Relay <devnull+kenta.torihiki.co.jp@relay.example.org>`,
        `${KENTA.family} ${KENTA.given} via bukai <bukai@lists.listhost.org>`,
        `Kenta Hasegawa (by way of Partner List) <partners@lists.listhost.org>`,
      ]) {
        const kentaKeys = [kanjiKey(KENTA), romajiKey(KENTA)];
        assert.deepEqual(
          quotedThread(replyBody(quotedFrom)).bindings.filter((b) => kentaKeys.includes(b.name)),
          [],
          quotedFrom,
        );
        const v = await run(fromField('Kenta Hasegawa', KENTA.address), KENTA.address, replyBody(quotedFrom), { client: partnerClient });
        assert.ok(!symbols(v).some((s) => /NAME_CONFLICT|HIJACK|SUSPECT/.test(s)), `${quotedFrom}: ${symbols(v).join(',')}`);
      }
    });
  });

  describe('binding through a shared address in the thread memory', () => {
    const threadId = 'kenta-thread@mail.example.com';
    const outbound = () =>
      buildMessage({
        from: fromField(us.name, us.address),
        to: fromField('Kenta Hasegawa', KENTA.address),
        subject: '見積もりの件',
        body: '長谷川様\nお見積もりをお願いします。',
        messageId: threadId,
      });

    it('a genuine reply written in kanji binds his kanji form to the address our thread knows in romaji; a hijack in kanji is then impersonation', async () => {
      const state: StateBackend = { kind: 'memory' };
      await relayAndLearn(state, outbound(), { mailFrom: us.address, rcptTo: [KENTA.address] }, ourClient);
      // before the binding: the kanji form says nothing about the romaji participant
      const hijack = () =>
        buildMessage({
          from: fromField(`${KENTA.family}${KENTA.given}様`, ATTACKER),
          to: fromField(us.name, us.address),
          subject: 'Re: 見積もりの件',
          body: '添付の請求書をご確認ください。',
          inReplyTo: threadId,
          references: [threadId],
        });
      const before = await runMessage(hijack(), { mailFrom: ATTACKER, rcptTo: [us.address] }, attackerClient, testPolicy(), {
        state,
        resolver: nxdomainResolver,
      });
      assert.ok(symbols(before).includes('SPOOF_THREAD_OUTSIDER'), symbols(before).join(','));
      // Kenta answers, writing his name in kanji and quoting our message
      const genuine = buildMessage({
        from: fromField(`${KENTA.family} ${KENTA.given}`, KENTA.address),
        to: fromField(us.name, us.address),
        subject: 'Re: 見積もりの件',
        body: '鈴木様\nお見積もりを添付いたします。',
        inReplyTo: threadId,
        references: [threadId],
      });
      const learned = await relayAndLearn(state, genuine, { mailFrom: KENTA.address, rcptTo: [us.address] }, partnerClient);
      assert.ok(learned?.bindings.some((b) => b.name === kanjiKey(KENTA) && b.address === KENTA.address));
      const after = await runMessage(hijack(), { mailFrom: ATTACKER, rcptTo: [us.address] }, attackerClient, testPolicy(), {
        state,
        resolver: nxdomainResolver,
      });
      assert.ok(symbols(after).includes('SPOOF_THREAD_IMPERSONATION'), symbols(after).join(','));
      assert.match(after.findings.find((f) => f.symbol === 'SPOOF_THREAD_IMPERSONATION')?.detail ?? '', new RegExp(KENTA.address));
      assert.equal(after.action, 'quarantine');
    });

    it('our own reply quoting his kanji form binds it; a later reply in kanji from a new address is a known name on a new address', async () => {
      const state: StateBackend = { kind: 'memory' };
      const ours = buildMessage({
        from: fromField(us.name, us.address),
        to: fromField('Kenta Hasegawa', KENTA.address),
        subject: 'Re: 見積もりの件',
        body: `承知しました。\n\n差出人: ${KENTA.family} ${KENTA.given}\n送信日時: 2024年6月3日 10:02\n宛先: ${us.name}\n件名: 見積もりの件\n\n鈴木様\n--\n${KENTA.family} ${KENTA.given}\nメール: ${KENTA.address}\n`,
        inReplyTo: 'their-first@torihiki.co.jp',
        references: ['their-first@torihiki.co.jp'],
      });
      const learned = await relayAndLearn(state, ours, { mailFrom: us.address, rcptTo: [KENTA.address] }, ourClient);
      assert.ok(
        learned?.bindings.some((b) => b.name === kanjiKey(KENTA) && b.address === KENTA.address),
        JSON.stringify(learned?.bindings),
      );
      const v = await run(fromField(`${KENTA.family} ${KENTA.given} 課長`, ATTACKER), ATTACKER, '至急ご確認ください。', { state });
      assert.ok(symbols(v).includes('SPOOF_KNOWN_NAME_NEW_ADDRESS'), symbols(v).join(','));
      assert.match(v.findings.find((f) => f.symbol === 'SPOOF_KNOWN_NAME_NEW_ADDRESS')?.detail ?? '', new RegExp(KENTA.address));
    });

    it("an inbound quoted thread teaches only the forms of its sender's own organisation", async () => {
      const state: StateBackend = { kind: 'memory' };
      const genuine = buildMessage({
        from: fromField('Kenta Hasegawa', KENTA.address),
        to: fromField(us.name, us.address),
        subject: 'Re: 見積もりの件',
        body: `ご確認ください。\n\n差出人: ${KENTA.family} ${KENTA.given} <${KENTA.address}>\n送信日時: x\n宛先: y\n件名: z\n\n差出人: 誰か <${ATTACKER}>\n送信日時: x\n宛先: y\n件名: z\n`,
        inReplyTo: 'x@torihiki.co.jp',
        references: ['x@torihiki.co.jp'],
      });
      const learned = await relayAndLearn(state, genuine, { mailFrom: KENTA.address, rcptTo: [us.address] }, partnerClient);
      const bound = (learned?.bindings ?? []).map((b) => `${b.name}=${b.address}`).sort();
      assert.deepEqual(bound, [`${kanjiKey(KENTA)}=${KENTA.address}`, `${romajiKey(KENTA)}=${KENTA.address}`].sort());
    });
  });

  it('the header block helper keeps the raw field (the name keys read decoded names)', () => {
    const [f] = parseHeaderBlock(`From: ${fromField(`${KENTA.family}${KENTA.given}様`, KENTA.address)}`);
    assert.deepEqual(nameKeys(f.value.replace(/<.*$/, '')), [kanjiKey(KENTA)]);
  });
});
