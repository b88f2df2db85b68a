// Lookalike domains and the policy's DNS end to end: two gateway nodes share one Redis; node A
// relays our outbound message to the partner (the partner's domain becomes a known correspondent),
// node B gets the continuation of that thread from a lookalike domain that authenticates perfectly
// (SPF and DMARC pass, through the loopback name server the policy names) and quarantines it, while
// the genuine partner's reply is relayed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { transaction, text } from '../helpers/client.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { buildMessage, display, originalMessage, PEOPLE, quotedOriginal, SUBJECT } from '../fixtures/mail/threads.js';

describe('lookalike domains e2e (two nodes, real Redis, loopback DNS)', function () {
  const prefix = `test:lookalike:${randomBytes(6).toString('hex')}:`;
  const clients: Redis[] = [];
  let sink: Sink;
  let dns: TestDnsServer;
  let nodeA: RunningGateway;
  let nodeB: RunningGateway;
  const { us, them } = PEOPLE.en;
  const impostor = { name: them.name, address: 'bob.smith@partner-mail.example' };

  before(async () => {
    sink = await startSink();
    // every client here is loopback: both domains publish SPF for it and DMARC p=reject
    dns = await startDnsServer({
      'partner.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
      '_dmarc.partner.example': { TXT: ['v=DMARC1; p=reject'] },
      'partner-mail.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
      '_dmarc.partner-mail.example': { TXT: ['v=DMARC1; p=reject'] },
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-lookalike-'));
    const node = async () => {
      const redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
      await redis.connect();
      clients.push(redis);
      return startGateway(
        sink.port,
        [
          'network.internalDomains=["example.com"]',
          `spoof.keyPrefix=${JSON.stringify(prefix)}`,
          `rate.keyPrefix=${JSON.stringify(prefix + 'rate:')}`,
          `dns.servers=["${dns.address}"]`,
          `quarantine.dir=${dir}`,
        ],
        { state: { kind: 'redis', redis, failMode: 'open' } },
      );
    };
    nodeA = await node();
    nodeB = await node();
  });

  after(async () => {
    await nodeA?.close();
    await nodeB?.close();
    await sink?.close();
    await dns?.close();
    const keys = await clients[0].keys(`${prefix}*`);
    if (keys.length) await clients[0].del(...keys);
    for (const c of clients) await c.quit();
  });

  const send = (gw: RunningGateway, mailFrom: string, rcpt: string, bytes: Buffer) =>
    transaction(gw.port, `MAIL FROM:<${mailFrom}>`, [`RCPT TO:<${rcpt}>`], bytes);

  it('node A learns the partner; node B quarantines the thread continued from partner-mail.example and relays the partner', async () => {
    const out = await send(nodeA, us.address, them.address, buildMessage(originalMessage('en')));
    assert.equal(out.data?.code, 250, text(out.data));

    // the impostor rewrote the quoted thread to its own address: no name conflict is left to see
    const lure = buildMessage({
      from: display(impostor),
      to: display(us),
      subject: `RE: ${SUBJECT.en}`,
      body: `Please see the attached invoice.\n\n${quotedOriginal('en', 'text', us, impostor)}`,
      inReplyTo: 'their-side-1@mail.partner-mail.example',
    });
    const hijacked = await send(nodeB, impostor.address, us.address, lure);
    assert.equal(hijacked.data?.code, 250, text(hijacked.data));
    assert.match(text(hijacked.data), /quarantined/);
    const line = nodeB.events('message').at(-1)!;
    const symbols = line.symbols as string[];
    assert.ok(symbols.includes('SPOOF_REPLY_LOOKALIKE_DOMAIN'), JSON.stringify(symbols));
    assert.ok(symbols.includes('AUTH_DMARC_PASS'), `the impostor's own domain authenticates: ${JSON.stringify(symbols)}`);
    assert.ok(
      dns.questions.some((q) => q.name === '_dmarc.partner-mail.example'),
      'DMARC asked of the policy name server',
    );

    const before = sink.messages.length;
    const reply = buildMessage({
      from: display(them),
      to: display(us),
      subject: `RE: ${SUBJECT.en}`,
      body: `Thanks Alice, our quote is attached.\n\n${quotedOriginal('en', 'text')}`,
      inReplyTo: 'orig-1234@mail.example.com',
    });
    const genuine = await send(nodeB, them.address, us.address, reply);
    assert.equal(genuine.data?.code, 250, text(genuine.data));
    assert.doesNotMatch(text(genuine.data), /quarantined/);
    assert.equal(sink.messages.length, before + 1);
    const genuineLine = nodeB.events('message').at(-1)!;
    assert.ok(!(genuineLine.symbols as string[]).some((s) => s.includes('LOOKALIKE')), JSON.stringify(genuineLine.symbols));
    assert.equal(genuineLine.verdict, 'relay');
  });
});
