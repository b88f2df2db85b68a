// Reply-chain spoofing end to end with real Redis: an outbound message is relayed through the
// gateway (and remembered), then an inbound hijacked reply to it is quarantined while the genuine
// reply from the real participant is relayed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { StateBackend } from '../../src/state/index.js';
import { transaction, text } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { freePort } from '../helpers/global.js';
import { buildMessage, genuine, hijack, originalMessage, PEOPLE } from '../fixtures/mail/threads.js';

describe('spoof e2e (real Redis)', function () {
  let redis: Redis;
  let sink: Sink;
  let gw: RunningGateway;
  let dir: string;
  const prefix = `test:spoof:${randomBytes(6).toString('hex')}:`;

  before(async () => {
    redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    await redis.connect();
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-spoof-'));
    const state: StateBackend = { kind: 'redis', redis, failMode: 'open' };
    // every client is loopback here: example.com senders are outbound, the others inbound;
    // authentication is covered offline in the unit tests (no DNS from the test run)
    gw = await startGateway(
      sink.port,
      [
        'network.internalDomains=["example.com"]',
        `spoof.keyPrefix=${JSON.stringify(prefix)}`,
        'spoof.authentication=false',
        `rate.keyPrefix=${JSON.stringify(prefix + 'rate:')}`,
        `quarantine.dir=${dir}`,
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

  const us = PEOPLE.en.us;
  const them = PEOPLE.en.them;
  const send = (mailFrom: string, rcpts: string[], bytes: Buffer) =>
    transaction(
      gw.port,
      `MAIL FROM:<${mailFrom}>`,
      rcpts.map((r) => `RCPT TO:<${r}>`),
      bytes,
    );

  it('remembers the relayed outbound message, quarantines the hijacked reply, relays the genuine one', async () => {
    const out = await send(us.address, [them.address], buildMessage(originalMessage('en')));
    assert.equal(out.data?.code, 250, text(out.data));
    assert.ok((await redis.keys(`${prefix}*`)).length >= 3, 'thread, bindings and correspondent keys written');

    // the hijack: stolen In-Reply-To, Bob's name on an unrelated address, a short lure, no quoted thread
    const bad = hijack('stolen-references', 'en', 'text');
    bad.spec.body = 'Please see the attached invoice and confirm today.';
    const hijacked = await send(bad.mailFrom, bad.rcptTo, buildMessage(bad.spec));
    assert.equal(hijacked.data?.code, 250, text(hijacked.data));
    assert.match(text(hijacked.data), /quarantined/);
    const line = gw.events('message').at(-1)!;
    assert.ok((line.symbols as string[]).includes('SPOOF_THREAD_IMPERSONATION'), JSON.stringify(line.symbols));
    assert.ok(readdirSync(dir).some((f) => f.endsWith('.json') && readFileSync(path.join(dir, f), 'utf8').includes('SPOOF_THREAD_IMPERSONATION')));

    const before = sink.messages.length;
    const good = genuine('participant-reply', 'en', 'text');
    const reply = await send(good.mailFrom, good.rcptTo, buildMessage(good.spec));
    assert.equal(reply.data?.code, 250, text(reply.data));
    assert.doesNotMatch(text(reply.data), /quarantined/);
    assert.equal(sink.messages.length, before + 1);
    const genuineLine = gw.events('message').at(-1)!;
    assert.ok((genuineLine.symbols as string[]).includes('SPOOF_THREAD_PARTICIPANT'), JSON.stringify(genuineLine.symbols));
    assert.equal(genuineLine.verdict, 'relay');
  });

  it('Redis down: STATE_UNAVAILABLE in the log, the message still judged and relayed (fail mode open)', async () => {
    const deadRedis = new Redis(`redis://127.0.0.1:${await freePort()}`, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    deadRedis.on('error', () => undefined);
    await deadRedis.connect().catch(() => undefined);
    const down = await startGateway(sink.port, ['network.internalDomains=["example.com"]', 'spoof.authentication=false', `quarantine.dir=${dir}`], {
      state: { kind: 'redis', redis: deadRedis, failMode: 'open' },
    });
    try {
      const good = genuine('participant-reply', 'en', 'text');
      const r = await transaction(down.port, `MAIL FROM:<${good.mailFrom}>`, [`RCPT TO:<${good.rcptTo[0]}>`], buildMessage(good.spec));
      assert.equal(r.data?.code, 250, text(r.data));
      const line = down.events('message').at(-1)!;
      assert.ok((line.symbols as string[]).includes('STATE_UNAVAILABLE'), JSON.stringify(line.symbols));
      assert.equal(line.verdict, 'relay');
    } finally {
      await down.close();
      deadRedis.disconnect();
    }
  });
});
