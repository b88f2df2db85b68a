// Reply-chain identity checks through the SMTP front end, with real Redis and a real downstream:
// encoded display names carrying an address, one person written many ways, a participant's real
// address sent from someone else's infrastructure. Our side's mail comes from loopback (internal);
// the partner's and the attacker's come through XFORWARD ADDR as an MTA in front would pass them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import type { StateBackend } from '../../src/state/index.js';
import { connect, text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { encodedPhrase } from '../fixtures/mail/display-names.js';
import { fromField, KENTA } from '../fixtures/mail/names.js';
import { HOSTS } from '../fixtures/mail/senders.js';
import { ATTACKER, buildMessage, CLIENT_IP, display, hijack, originalMessage, PEOPLE } from '../fixtures/mail/threads.js';

describe('spoof identity e2e (SMTP front end, real Redis)', function () {
  let redis: Redis;
  let sink: Sink;
  let gw: RunningGateway;
  const prefix = `test:spoof-identity:${randomBytes(6).toString('hex')}:`;

  before(async () => {
    redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    await redis.connect();
    sink = await startSink();
    const state: StateBackend = { kind: 'redis', redis, failMode: 'open' };
    gw = await startGateway(
      sink.port,
      [
        'network.internalDomains=["example.com"]',
        `spoof.keyPrefix=${JSON.stringify(prefix)}`,
        // no DNS from the test run: authentication is covered offline in the unit tests
        'spoof.authentication=false',
        `rate.keyPrefix=${JSON.stringify(prefix + 'rate:')}`,
        `quarantine.dir=${mkdtempSync(path.join(tmpdir(), 'mailmoat-spoof-identity-'))}`,
      ],
      { state },
    );
  });

  after(async () => {
    await gw?.close();
    await sink?.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  /** Our side: an internal client (loopback). */
  const sendOut = (mailFrom: string, rcpts: string[], bytes: Buffer) =>
    transaction(
      gw.port,
      `MAIL FROM:<${mailFrom}>`,
      rcpts.map((r) => `RCPT TO:<${r}>`),
      bytes,
    );

  /** Another organisation's mail, from `ip` as the MTA in front tells it (XFORWARD). */
  async function sendIn(ip: string, helo: string, mailFrom: string, rcpts: string[], bytes: Buffer) {
    const client = await connect(gw.port, 'mx.test');
    try {
      assert.equal((await client.command(`XFORWARD ADDR=${ip} HELO=${helo}`)).code, 250);
      assert.equal((await client.command(`MAIL FROM:<${mailFrom}>`)).code, 250);
      for (const r of rcpts) assert.equal((await client.command(`RCPT TO:<${r}>`)).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      const reply = await client.sendMessage(Readable.from([bytes]), 30_000);
      const line = gw.events('message').at(-1)!;
      return { reply, line, symbols: line.symbols as string[] };
    } finally {
      await client.quit();
    }
  }

  it('an encoded display name that decodes to the participant\'s "Name <address>" is display text: the reply is quarantined', async () => {
    const { us, them } = PEOPLE.ja;
    const out = await sendOut(us.address, [them.address], buildMessage({ ...originalMessage('ja'), messageId: `enc-${prefix}@mail.example.com` }));
    assert.equal(out.data?.code, 250, text(out.data));
    const c = hijack('stolen-references', 'ja', 'text');
    c.spec.inReplyTo = `enc-${prefix}@mail.example.com`;
    c.spec.references = [c.spec.inReplyTo];
    c.spec.from = `${encodedPhrase(`${them.name} <${them.address}>`, 'iso-2022-jp', 'B', true)} <${ATTACKER}>`;
    const before = sink.messages.length;
    const r = await sendIn(CLIENT_IP['hacked-shop.example'], 'mail.hacked-shop.example', ATTACKER, [us.address], buildMessage(c.spec));
    assert.equal(r.reply.code, 250, text(r.reply));
    assert.match(text(r.reply), /quarantined/);
    assert.equal(sink.messages.length, before, 'nothing relayed');
    assert.ok(r.symbols.includes('SPOOF_DISPLAY_NAME_ADDRESS') && r.symbols.includes('SPOOF_THREAD_IMPERSONATION'), r.symbols.join(','));
    assert.ok(!r.symbols.includes('SPOOF_THREAD_PARTICIPANT'));
    const findings = r.line.findings as { symbol: string; detail?: string }[];
    assert.match(findings.find((f) => f.symbol === 'SPOOF_DISPLAY_NAME_ADDRESS')?.detail ?? '', new RegExp(`carries ${them.address} but From is ${ATTACKER}`));
  });

  it('one person written in romaji by us and in kanji by himself: a hijack in kanji with an honorific is impersonation; his list mail is relayed', async () => {
    const us = PEOPLE.ja.us;
    const threadId = `kenta-${prefix}@mail.example.com`;
    const out = await sendOut(
      us.address,
      [KENTA.address],
      buildMessage({
        from: fromField(us.name, us.address),
        to: fromField('Kenta Hasegawa', KENTA.address),
        subject: '見積もりの件',
        body: '長谷川様',
        messageId: threadId,
      }),
    );
    assert.equal(out.data?.code, 250, text(out.data));
    const reply = (from: string, body: string, extra?: Record<string, string>) =>
      buildMessage({
        from,
        to: fromField(us.name, us.address),
        subject: 'Re: 見積もりの件',
        body,
        inReplyTo: threadId,
        references: [threadId],
        ...(extra ? { extra } : {}),
      });
    // Kenta answers from his own servers, signing in kanji: relayed, and his kanji form is learned
    const genuine = await sendIn(
      CLIENT_IP['torihiki.co.jp'],
      'mail.torihiki.co.jp',
      KENTA.address,
      [us.address],
      reply(fromField('長谷川 健太', KENTA.address), '鈴木様\n添付いたします。'),
    );
    assert.doesNotMatch(text(genuine.reply), /quarantined/);
    assert.ok(genuine.symbols.includes('SPOOF_THREAD_PARTICIPANT'), genuine.symbols.join(','));
    // a list we are both on rewrites From to "長谷川 健太 via bukai" (in a list thread): relayed, his name is no conflict
    const list = await sendIn(
      '192.0.2.50',
      'lists.listhost.org',
      'bukai-bounces@lists.listhost.org',
      [us.address],
      buildMessage({
        from: fromField('長谷川 健太 via bukai', 'bukai@lists.listhost.org'),
        to: 'bukai@lists.listhost.org',
        subject: 'Re: [bukai] 部会のお知らせ',
        body: `賛成です。\n\n差出人: ${us.name} <${us.address}>\n送信日時: x\n宛先: bukai\n件名: 部会のお知らせ\n`,
        inReplyTo: 'bukai-1@lists.listhost.org',
        references: ['bukai-1@lists.listhost.org'],
        extra: { 'List-Id': '<bukai.lists.listhost.org>', 'List-Post': '<mailto:bukai@lists.listhost.org>' },
      }),
    );
    assert.equal(list.line.verdict, 'relay', list.symbols.join(','));
    // the attacker writes "長谷川健太様" from an unrelated address: the kanji form is bound to Kenta's address
    const before = sink.messages.length;
    const hijacked = await sendIn(
      CLIENT_IP['hacked-shop.example'],
      'mail.hacked-shop.example',
      ATTACKER,
      [us.address],
      reply(fromField('長谷川健太様', ATTACKER), '添付の請求書をご確認ください。'),
    );
    assert.match(text(hijacked.reply), /quarantined/);
    assert.equal(sink.messages.length, before);
    assert.ok(hijacked.symbols.includes('SPOOF_THREAD_IMPERSONATION'), hijacked.symbols.join(','));
  });

  it("the participant's real address through someone else's infrastructure is quarantined; his own network, a colleague's new laptop on it, are relayed", async () => {
    const { us, them: bob, colleague: dan } = PEOPLE.en;
    const threadId = `infra-${prefix}@mail.example.com`;
    const out = await sendOut(us.address, [bob.address], buildMessage({ ...originalMessage('en'), messageId: threadId }));
    assert.equal(out.data?.code, 250, text(out.data));
    const reply = (from: { name: string; address: string }) =>
      buildMessage({
        from: display(from),
        to: display(us),
        subject: 'RE: Quote for the Q3 order',
        body: 'Invoice attached.',
        inReplyTo: threadId,
        references: [threadId],
      });
    // Bob's genuine reply from his mail server teaches the memory his infrastructure
    const genuine = await sendIn(HOSTS.partner.address, HOSTS.partner.helo, bob.address, [us.address], reply(bob));
    assert.equal(genuine.line.verdict, 'relay', genuine.symbols.join(','));
    // the hijack: his real From, the attacker's envelope and host
    const before = sink.messages.length;
    const hijacked = await sendIn(HOSTS.attacker.address, HOSTS.attacker.helo, ATTACKER, [us.address], reply(bob));
    assert.match(text(hijacked.reply), /quarantined/);
    assert.equal(sink.messages.length, before);
    assert.ok(hijacked.symbols.includes('SPOOF_KNOWN_SENDER_NEW_INFRA'), hijacked.symbols.join(','));
    const detail = (hijacked.line.findings as { symbol: string; detail?: string }[]).find((f) => f.symbol === 'SPOOF_KNOWN_SENDER_NEW_INFRA')?.detail;
    assert.match(detail ?? '', /net:198\.51\.100\.0\/24.*this reply came through net:203\.0\.113\.0\/24/);
    const scores = Object.fromEntries((hijacked.line.findings as { symbol: string; score: number }[]).map((f) => [f.symbol, f.score]));
    assert.ok(scores.SPOOF_KNOWN_SENDER_NEW_INFRA >= 7, 'quarantines on its own under the default policy');
    // genuine near-neighbours: Bob from another host of his network, his colleague's new laptop on it
    for (const [who, host] of [
      [bob, HOSTS.partnerNeighbour],
      [dan, HOSTS.partnerNeighbour],
    ] as const) {
      const r = await sendIn(host.address, host.helo, who.address, [us.address], reply(who));
      assert.equal(r.line.verdict, 'relay', `${who.address}: ${r.symbols.join(',')}`);
      assert.ok(!r.symbols.includes('SPOOF_KNOWN_SENDER_NEW_INFRA'));
    }
  });
});
