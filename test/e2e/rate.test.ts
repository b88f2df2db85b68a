// Sender rates through SMTP: real gateways, a real downstream, real Redis (shared, with a key prefix
// per test; a private redis-server where the test kills it).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { planFor } from '../../src/rate/plan.js';
import { RedisRateStore } from '../../src/rate/redis-store.js';
import { subject } from '../../src/rate/store.js';
import type { RedisClient, StateBackend } from '../../src/state/index.js';
import { text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { keysWithPrefix, privateRedis, ratePolicy, removePrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';
import { startGatewayProcess } from '../helpers/rate-process.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { buildDocx } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sender rates through SMTP', function () {
  this.timeout(120000);
  let sink: Sink;
  let redis: RedisClient;
  let prefix: string;
  let word: Buffer;
  let plain: Buffer;
  const inbound = Buffer.from('From: Mallory <mallory@outside.test>\r\nTo: bob@internal.test\r\nSubject: hi\r\n\r\nhello\r\n');
  const gateways: RunningGateway[] = [];
  const clients: RedisClient[] = [];

  before(async () => {
    sink = await startSink();
    redis = await testRedis();
    word = await emailWith([{ filename: 'report.docx', content: await buildDocx() }]);
    plain = Buffer.from('From: Alice <alice@internal.test>\r\nTo: bob@outside.test\r\nSubject: hi\r\n\r\nhello\r\n');
  });
  after(async () => {
    await sink.close();
    await redis.quit();
  });
  beforeEach(() => (prefix = uniquePrefix()));
  afterEach(async () => {
    for (const g of gateways.splice(0)) await g.close();
    for (const c of clients.splice(0)) c.disconnect();
    await removePrefix(redis, prefix);
  });

  /** A gateway on its own Redis connection (as a separate process would have), internal.test internal. */
  async function gateway(overrides: string[] = [], state?: StateBackend): Promise<RunningGateway> {
    let backend = state;
    if (!backend) {
      const own = await testRedis();
      clients.push(own);
      backend = { kind: 'redis', redis: own, failMode: 'open' };
    }
    const quarantine = mkdtempSync(path.join(tmpdir(), 'mailmoat-rate-'));
    const g = await startGateway(
      sink.port,
      ['network.internalDomains=[internal.test]', `rate.keyPrefix="${prefix}"`, `quarantine.dir=${quarantine}`, ...overrides],
      { state: backend },
    );
    gateways.push(g);
    return g;
  }

  async function send(g: RunningGateway, message: Buffer, mail = MAIL, rcpts = [RCPT]) {
    const r = await transaction(g.port, mail, rcpts, message);
    return { mail: text(r.mail), data: text(r.data), log: g.events('message').at(-1) };
  }

  it("an internal sender's 21st Word message in an hour (limit 20) is quarantined with RATE_OFFICE_ATTACHMENTS", async () => {
    const g = await gateway(); // the default threshold: office, 1h, limit 20, quarantine
    for (let i = 1; i <= 20; i++) {
      const r = await send(g, word);
      assert.match(r.data, /^250 .*queued as SINK/, `message ${i}: ${r.data}`);
    }
    const r21 = await send(g, word);
    assert.match(r21.data, /^250 2\.0\.0 Ok: quarantined as /);
    const symbols = r21.log!.symbols as string[];
    assert.ok(symbols.includes('RATE_OFFICE_ATTACHMENTS'), symbols.join());
    const alert = g.events('rate_alert').at(-1)!;
    assert.equal(alert.subject, 'sender:alice@internal.test');
    assert.match(String(alert.detail), /office 21 > 20 in 1h/);
    // a message without an Office attachment from the same sender is not held up
    assert.match((await send(g, plain)).data, /^250 .*queued as SINK/);
  });

  it('with action defer: the 21st gets 451 4.7.1 at DATA (not counted), the next try 451 4.7.1 at MAIL', async () => {
    const g = await gateway(['rate.thresholds=[{metric: office, window: 1h, limit: 20, action: defer}]']);
    for (let i = 1; i <= 20; i++) assert.match((await send(g, word)).data, /^250 /);
    const r21 = await send(g, word);
    assert.match(r21.data, /^451 4\.7\.1 /);
    const next = await send(g, word);
    assert.match(next.mail, /^451 4\.7\.1 <alice@internal\.test> sent too much mail \(RATE_OFFICE_ATTACHMENTS: 21 > 20 in 1h\), try again later/);
    const plan = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
    const [counts] = await new RedisRateStore(redis).peek([subject('sender', 'alice@internal.test')], plan);
    assert.equal(counts.counts[1][2], 20, 'deferred tries are not counted');
  });

  it('an external sender is not counted as outbound (nor an internal address from an outside client)', async () => {
    const g = await gateway(['rate.thresholds=[{metric: messages, window: 1h, limit: 1, action: defer}]']);
    for (let i = 0; i < 3; i++) {
      assert.match((await send(g, inbound, 'MAIL FROM:<mallory@outside.test>', ['RCPT TO:<bob@internal.test>'])).data, /^250 /);
    }
    const outside = await gateway(['network.internalNetworks=[10.0.0.0/8]', 'rate.thresholds=[{metric: messages, window: 1h, limit: 1, action: defer}]']);
    for (let i = 0; i < 3; i++) {
      assert.match((await send(outside, plain, MAIL, ['RCPT TO:<carol@internal.test>'])).data, /^250 /);
    }
    assert.deepEqual(await keysWithPrefix(redis, prefix), []);
  });

  it('counts once per message, not per RCPT; distinct external recipients add up across messages', async () => {
    const g = await gateway(['rate.thresholds=[{metric: externalRecipients, window: 1h, limit: 3, action: tag}]']);
    const r1 = await send(g, plain, MAIL, ['RCPT TO:<a@outside.test>', 'RCPT TO:<b@outside.test>', 'RCPT TO:<c@internal.test>']);
    assert.match(r1.data, /^250 /);
    assert.equal(r1.log!.verdict, 'relay');
    const r2 = await send(g, plain, MAIL, ['RCPT TO:<a@outside.test>', 'RCPT TO:<d@outside.test>']);
    assert.equal(r2.log!.verdict, 'relay');
    const r3 = await send(g, plain, MAIL, ['RCPT TO:<e@outside.test>']);
    assert.equal(r3.log!.verdict, 'tag');
    assert.ok((r3.log!.symbols as string[]).includes('RATE_EXTERNAL_RECIPIENTS'));
    assert.match(sink.messages.at(-1)!.bytes.toString('latin1'), /^X-Mailmoat-Verdict: tag; score=0; symbols=RATE_EXTERNAL_RECIPIENTS;/);
    const plan = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
    const [c] = await new RedisRateStore(redis).peek([subject('sender', 'alice@internal.test')], plan);
    assert.deepEqual(c.counts[1].slice(0, 2), [3, 4]);
  });

  it('two gateways (own Redis connections) share the counts: the limit holds across both, deferred at MAIL', async () => {
    const limit = ['rate.thresholds=[{metric: messages, window: 1h, limit: 3, action: defer}]'];
    const a = await gateway(limit);
    const b = await gateway(limit);
    assert.match((await send(a, plain)).data, /^250 /);
    assert.match((await send(b, plain)).data, /^250 /);
    assert.match((await send(a, plain)).data, /^250 /);
    assert.match((await send(b, plain)).data, /^451 4\.7\.1 /);
    assert.match((await send(a, plain)).mail, /^451 4\.7\.1 .*RATE_MESSAGES: 4 > 3/);
  });

  it('two gateway processes on one Redis share the counts', async () => {
    const sets = [
      `state={backend: redis, url: "${process.env.MAILMOAT_TEST_REDIS_URL}", failMode: open}`,
      'network.internalDomains=[internal.test]',
      `rate.keyPrefix="${prefix}"`,
      'rate.thresholds=[{metric: messages, window: 1h, limit: 3, action: defer}]',
    ];
    const [a, b] = await Promise.all([startGatewayProcess(sink.port, sets), startGatewayProcess(sink.port, sets)]);
    try {
      const send = async (port: number) => text((await transaction(port, MAIL, [RCPT], plain)).data);
      assert.match(await send(a.port), /^250 /);
      assert.match(await send(b.port), /^250 /);
      assert.match(await send(b.port), /^250 /);
      assert.match(await send(a.port), /^451 4\.7\.1 /);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a header From that differs from the envelope sender counts under both, and as a mismatch', async () => {
    const g = await gateway(['rate.thresholds=[{metric: fromMismatch, window: 1h, limit: 1, action: quarantine}]']);
    const spoofed = Buffer.from('From: "CEO" <ceo@internal.test>\r\nTo: bob@outside.test\r\nSubject: urgent\r\n\r\npay\r\n');
    assert.equal((await send(g, spoofed)).log!.verdict, 'relay');
    const second = await send(g, spoofed);
    assert.equal(second.log!.verdict, 'quarantine');
    const subjects = g
      .events('rate_alert')
      .map((a) => a.subject)
      .sort();
    assert.deepEqual(subjects, ['from:ceo@internal.test', 'sender:alice@internal.test']);
  });

  it('a suspension persists across a gateway restart until it is lifted', async () => {
    const overrides = ['rate.thresholds=[{metric: office, window: 1h, limit: 2, action: suspend}]'];
    const first = await gateway(overrides);
    await send(first, word);
    await send(first, word);
    const third = await send(first, word);
    assert.match(third.data, /^451 4\.7\.1 /);
    assert.ok(first.events('sender_suspended').length === 1);
    await first.close();
    gateways.splice(gateways.indexOf(first), 1);

    const second = await gateway(overrides);
    const held = await send(second, plain);
    assert.match(
      held.mail,
      /^451 4\.7\.1 <alice@internal\.test> is suspended for unusual outbound mail \(RATE_OFFICE_ATTACHMENTS\); ask your mail administrator/,
    );
    const plan = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
    assert.equal(await new RedisRateStore(redis).unsuspend(subject('sender', 'alice@internal.test'), plan), true);
    assert.match((await send(second, plain)).data, /^250 /, 'lifted (a message without Office attachment does not fire again)');
  });

  it('suspend.action quarantine: a suspended sender is accepted at MAIL and its messages quarantined', async () => {
    const g = await gateway(['rate.suspend.action=quarantine']);
    const plan = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
    await new RedisRateStore(redis).suspend(subject('sender', 'alice@internal.test'), 'by hand', plan);
    const r = await send(g, plain);
    assert.match(r.data, /^250 2\.0\.0 Ok: quarantined as /);
    assert.ok((r.log!.symbols as string[]).includes('SENDER_SUSPENDED'));
  });

  it('Redis killed mid-test: fail open relays and logs loudly, fail closed answers 451 4.3.0, both recover', async () => {
    const server = await privateRedis();
    try {
      const own = await testRedis(server.url);
      clients.push(own);
      const limit = ['rate.thresholds=[{metric: messages, window: 1h, limit: 100, action: defer}]'];
      const open = await gateway(limit, { kind: 'redis', redis: own, failMode: 'open' });
      const closed = await gateway(limit, { kind: 'redis', redis: own, failMode: 'closed' });
      assert.match((await send(open, plain)).data, /^250 /);
      await server.stop();
      const started = Date.now();
      const r = await send(open, plain);
      assert.match(r.data, /^250 /, 'fail open: relayed');
      assert.ok(open.events('rate_state_unavailable').length >= 1);
      const c = await send(closed, plain);
      assert.match(c.mail, /^451 4\.3\.0 Sender rate state unavailable/);
      assert.ok(Date.now() - started < 5000, 'no hang');
      // inbound mail does not touch the rate state (other analyzers' fail modes may still apply)
      const seen = closed.events('rate_state_unavailable').length;
      const r2 = await send(closed, inbound, 'MAIL FROM:<mallory@outside.test>', ['RCPT TO:<bob@internal.test>']);
      assert.match(r2.mail, /^250 /);
      assert.equal(closed.events('rate_state_unavailable').length, seen);
      await server.start();
      let recovered = false;
      for (let i = 0; i < 50 && !recovered; i++) {
        await sleep(200);
        recovered = own.status === 'ready';
      }
      assert.ok(recovered, `client status ${own.status}`);
      const back = await send(closed, plain);
      assert.match(back.data, /^250 /, JSON.stringify(closed.events('rate_state_unavailable').at(-1)));
      const plan = planFor(ratePolicy([`rate.keyPrefix="${prefix}"`]).rate);
      const [after] = await new RedisRateStore(own).peek([subject('sender', 'alice@internal.test')], plan);
      assert.equal(after.counts[1][0], 1, 'counted again after recovery (the old server kept nothing)');
    } finally {
      await server.stop();
    }
  });
});
