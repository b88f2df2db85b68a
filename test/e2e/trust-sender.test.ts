// Release and trust the sender: a partner's genuine reply through servers the thread memory has not
// seen (his company's new mailing service) is held as a spoof. Released alone, the next reply that way
// is held again; released with --trust-sender, the memory learns those servers for him and his
// organisation, and the next reply that way is relayed. Someone else's servers stay a spoof. Real
// Redis, a real downstream, the gateway in this process and `mailmoat quarantine` as a process.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import type { QuarantineMetadata } from '../../src/quarantine/store.js';
import type { StateBackend } from '../../src/state/index.js';
import { connect, text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { ESP_BOUNCE, HOSTS } from '../fixtures/mail/senders.js';
import { buildMessage, display, originalMessage, PEOPLE } from '../fixtures/mail/threads.js';
import { mailmoat } from '../helpers/cli.js';

const cli = (args: string[]) => mailmoat(['quarantine', ...args]);

describe('release and trust the sender (quarantine release --trust-sender, real Redis)', function () {
  this.timeout(120_000);
  const { us, them: bob } = PEOPLE.en;
  const prefix = `test:trust-sender:${randomBytes(6).toString('hex')}:`;
  const threadId = `trust-${prefix}@mail.example.com`;
  let redis: Redis;
  let sink: Sink;
  let gw: RunningGateway;
  let dir: string;
  let policyFile: string;
  let memoryPolicyFile: string;

  before(async () => {
    redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    await redis.connect();
    sink = await startSink();
    const root = mkdtempSync(path.join(tmpdir(), 'mailmoat-trust-'));
    dir = path.join(root, 'quarantine');
    const shared = [
      'network.internalDomains=["example.com"]',
      `spoof.keyPrefix=${JSON.stringify(prefix)}`,
      // no DNS from the test run: what the servers are is their network and envelope
      'spoof.authentication=false',
      `rate.keyPrefix=${JSON.stringify(prefix + 'rate:')}`,
      `quarantine.dir=${JSON.stringify(dir)}`,
    ];
    const state: StateBackend = { kind: 'redis', redis, failMode: 'open' };
    gw = await startGateway(sink.port, shared, { state });
    // the admin's policy file: the same state, memory prefix and quarantine as the gateway's
    const common =
      `downstream: { host: 127.0.0.1, port: ${sink.port}, starttls: off }\n` +
      `network: { internalDomains: ["example.com"] }\n` +
      `spoof: { keyPrefix: ${JSON.stringify(prefix)}, authentication: false }\n` +
      `quarantine:\n  dir: ${JSON.stringify(dir)}\n`;
    policyFile = path.join(root, 'policy.yaml');
    writeFileSync(policyFile, common + `state: { backend: redis, url: ${JSON.stringify(process.env.MAILMOAT_TEST_REDIS_URL)} }\n`);
    memoryPolicyFile = path.join(root, 'memory-policy.yaml');
    writeFileSync(memoryPolicyFile, common);
  });

  after(async () => {
    await gw?.close();
    await sink?.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  const reply = (n: number) =>
    buildMessage({
      from: display(bob),
      to: display(us),
      subject: 'RE: Quote for the Q3 order',
      body: `Invoice ${n} attached.`,
      inReplyTo: threadId,
      references: [threadId],
    });

  /** Mail from another organisation, from `host` as the MTA in front tells it (XFORWARD). */
  async function sendIn(host: { address: string; helo: string }, mailFrom: string, bytes: Buffer) {
    const client = await connect(gw.port, 'mx.test');
    try {
      assert.equal((await client.command(`XFORWARD ADDR=${host.address} HELO=${host.helo}`)).code, 250);
      assert.equal((await client.command(`MAIL FROM:<${mailFrom}>`)).code, 250);
      assert.equal((await client.command(`RCPT TO:<${us.address}>`)).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      const answer = await client.sendMessage(Readable.from([bytes]), 30_000);
      const line = gw.events('message').at(-1)!;
      const held = /quarantined as ([0-9A-Z]{26})/.exec(text(answer))?.[1];
      return { held, verdict: line.verdict as string, symbols: line.symbols as string[] };
    } finally {
      await client.quit();
    }
  }

  const viaService = (n: number) => sendIn(HOSTS.esp, ESP_BOUNCE, reply(n));

  it('a reply through new servers is held; released alone it teaches nothing; released with --trust-sender the next one that way is relayed', async () => {
    const out = await transaction(
      gw.port,
      `MAIL FROM:<${us.address}>`,
      [`RCPT TO:<${bob.address}>`],
      buildMessage({ ...originalMessage('en'), messageId: threadId }),
    );
    assert.equal(out.data?.code, 250, text(out.data));
    const genuine = await sendIn(HOSTS.partner, bob.address, reply(0));
    assert.equal(genuine.verdict, 'relay', genuine.symbols.join(','));

    const first = await viaService(1);
    assert.ok(first.held, `held: ${first.verdict} ${first.symbols.join(',')}`);
    assert.ok(first.symbols.includes('SPOOF_KNOWN_SENDER_NEW_INFRA'), first.symbols.join(','));
    const meta = JSON.parse(readFileSync(path.join(dir, `${first.held}.json`), 'utf8')) as QuarantineMetadata;
    assert.equal(meta.observation?.infrastructure?.network, 'net:198.18.0.0/24', 'the item keeps the servers it came through');

    const plain = await cli(['release', first.held, '--operator', 'alice-admin', '--policy', policyFile]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.doesNotMatch(plain.stdout, /trusted/);
    const second = await viaService(2);
    assert.ok(second.held, `a release alone teaches nothing: ${second.verdict} ${second.symbols.join(',')}`);

    const trusted = await cli(['release', second.held, '--trust-sender', '--operator', 'alice-admin', '--policy', policyFile]);
    assert.equal(trusted.status, 0, trusted.stderr);
    assert.match(trusted.stdout, new RegExp(`${second.held}: released via`));
    assert.match(
      trusted.stdout,
      new RegExp(
        `${second.held}: sender trusted: bob\\.smith@partner\\.example and partner\\.example now known through net:198\\.18\\.0\\.0/24, env:esp-mailer\\.example`,
      ),
    );
    const after = JSON.parse(readFileSync(path.join(dir, `${second.held}.json`), 'utf8')) as QuarantineMetadata;
    const entry = after.history.find((h) => h.event === 'sender-trusted');
    assert.ok(entry && entry.by === 'alice-admin' && /net:198\.18\.0\.0\/24/.test(entry.detail ?? ''), JSON.stringify(after.history));
    const audit = readFileSync(path.join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; id: string; tokens?: string[] });
    assert.ok(audit.some((a) => a.action === 'trust-sender' && a.id === second.held && a.tokens?.includes('net:198.18.0.0/24')));

    const third = await viaService(3);
    assert.equal(third.verdict, 'relay', `trusted servers: ${third.symbols.join(',')}`);
    assert.ok(!third.symbols.includes('SPOOF_KNOWN_SENDER_NEW_INFRA'));
    // his colleague at the same organisation through the same service: the organisation's servers now
    const colleague = await sendIn(
      HOSTS.esp,
      ESP_BOUNCE,
      buildMessage({
        from: display(PEOPLE.en.colleague),
        to: display(us),
        subject: 'RE: Quote for the Q3 order',
        body: 'Updated.',
        inReplyTo: threadId,
        references: [threadId],
      }),
    );
    assert.ok(!colleague.symbols.includes('SPOOF_KNOWN_SENDER_NEW_INFRA'), colleague.symbols.join(','));
  });

  it('untrust takes it back: the next reply through those servers is held again; a second untrust is refused', async () => {
    const trustedId = JSON.parse(
      readFileSync(path.join(dir, 'audit.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l)
        .find((l) => l.includes('"trust-sender"'))!,
    ) as {
      id: string;
    };
    const r = await cli(['untrust', trustedId.id, '--operator', 'alice-admin', '--policy', policyFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /sender no longer trusted: bob\.smith@partner\.example and partner\.example no longer known through net:198\.18\.0\.0\/24, env:esp-mailer\.example/,
    );
    const again = await viaService(4);
    assert.ok(again.held, `untrusted: ${again.verdict} ${again.symbols.join(',')}`);
    const meta = JSON.parse(readFileSync(path.join(dir, `${trustedId.id}.json`), 'utf8')) as QuarantineMetadata;
    assert.equal(meta.history.at(-1)?.event, 'sender-untrusted');
    const twice = await cli(['untrust', trustedId.id, '--policy', policyFile]);
    assert.equal(twice.status, 1, twice.stdout);
    assert.match(twice.stderr, /no sender is trusted through it/);

    // trusted afterwards, without a second delivery: `trust` on a message already released
    const before = sink.messages.length;
    const later = await cli(['trust', trustedId.id, '--operator', 'alice-admin', '--policy', policyFile]);
    assert.equal(later.status, 0, later.stderr);
    assert.match(later.stdout, /sender trusted: bob\.smith@partner\.example and partner\.example now known through net:198\.18\.0\.0\/24/);
    assert.equal(sink.messages.length, before, 'nothing delivered again');
    const relayed = await viaService(5);
    assert.equal(relayed.verdict, 'relay', relayed.symbols.join(','));
    assert.equal((await cli(['untrust', trustedId.id, '--policy', policyFile])).status, 0);
    // a held message cannot be trusted before it is released
    const held = await viaService(6);
    assert.ok(held.held, held.symbols.join(','));
    const early = await cli(['trust', held.held, '--policy', policyFile]);
    assert.equal(early.status, 1, early.stdout);
    assert.match(early.stderr, /is held, not released: only a message an admin released is trusted/);
  });

  it('the way around: trusting one service does not trust another network or envelope with his address', async () => {
    // (the service's envelope from another network is SPF's to refuse: with DNS off, as here, an
    // envelope is taken at its word, trusted or not: test/unit/spoof-infrastructure.test.ts)
    for (const [host, mailFrom] of [
      [HOSTS.attacker, 'x@hacked-shop.example'],
      [{ address: '198.18.5.7', helo: 'vps.cloud.example' }, 'x@hacked-shop.example'], // another /24 of the service's /16: one /24 is no pool
    ] as const) {
      const r = await sendIn(host, mailFrom, reply(9));
      assert.ok(r.held, `${host.address} ${mailFrom}: ${r.verdict} ${r.symbols.join(',')}`);
      assert.ok(
        r.symbols.some((s) => s.startsWith('SPOOF_')),
        r.symbols.join(','),
      );
    }
  });

  it('with the embedded state the CLI refuses --trust-sender before releasing anything, and says where to do it', async () => {
    const r = await sendIn(HOSTS.attackerV6, 'x@hacked-shop.example', reply(10));
    assert.ok(r.held, `${r.verdict} ${r.symbols.join(',')}`);
    const refused = await cli(['release', r.held, '--trust-sender', '--policy', memoryPolicyFile]);
    assert.equal(refused.status, 2, refused.stdout);
    assert.match(refused.stderr, /state\.backend is memory: the thread memory lives inside the running gateway.*Use the console \(inside mailmoat serve\)/s);
    const meta = JSON.parse(readFileSync(path.join(dir, `${r.held}.json`), 'utf8')) as QuarantineMetadata;
    assert.equal(meta.state, 'held', 'nothing released');
  });
});
