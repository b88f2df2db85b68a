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
import { ATTACKER, buildMessage, CLIENT_IP, hijack, originalMessage, PEOPLE } from '../fixtures/mail/threads.js';

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
});
