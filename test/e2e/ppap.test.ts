// The separate password mail (issue 12 §7), end to end: an encrypted attachment held as
// unscannable, its password in another message; through the SMTP proxy with a real downstream and
// quarantine directory, through the milter, and across two gateway nodes sharing Redis.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { envelopePackets, messagePackets, MilterClient, OPTNEG_POSTFIX, packet, show } from '../helpers/milter-client.js';
import { startMilter, type RunningMilter } from '../helpers/milter-server.js';
import { removePrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { archiveMail, passwordMail, type PairOptions } from '../fixtures/passwords/ppap.js';
import type { QuarantineMetadata } from '../../src/quarantine/store.js';
import { MAX_TRIES } from '../../src/quarantine/password-pairs.js';
import { createRedisClient, type RedisClient } from '../../src/state/index.js';
import { freePort } from '../helpers/global.js';

const TARO = 'taro@internal.test';
const SATO = 'sato@partner.test';

type Logged = { events(event: string): Record<string, unknown>[] };

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeout = 20_000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function quarantinedId(reply: string): string {
  const id = /quarantined as ([0-9A-Z]{26})$/.exec(reply)?.[1];
  assert.ok(id, reply);
  return id;
}

describe('separate password mail through SMTP', function () {
  this.timeout(60_000);
  let sink: Sink;
  let dir: string;
  let gw: RunningGateway;

  beforeEach(async () => {
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-ppap-'));
  });
  afterEach(async () => {
    await gw?.close();
    await sink.close();
  });

  const start = async (overrides: string[] = []) => (gw = await startGateway(sink.port, [`quarantine.dir=${dir}`, ...overrides]));
  const meta = (id: string) => JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata;
  const audit = () =>
    readFileSync(path.join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const send = async (from: string, to: string[], message: Buffer) =>
    text(
      (
        await transaction(
          gw.port,
          `MAIL FROM:<${from}>`,
          to.map((t) => `RCPT TO:<${t}>`),
          message,
        )
      ).data,
    );
  /** the held item's fate, once the gateway has tried a password mail on it */
  const retried = (log: Logged, id: string) => waitFor(`ppap_retry for ${id}`, () => log.events('ppap_retry').find((e) => e.id === id));
  /** a password mail was looked at (and found no item, or some) */
  const checked = (log: Logged, count: number) => waitFor(`${count} ppap_passwords`, () => log.events('ppap_passwords').length >= count && true);
  const releasedCopies = (id: string) => sink.messages.filter((m) => m.bytes.toString('latin1').startsWith(`X-Mailmoat-Released: id=${id};`));

  for (const payload of ['zipcrypto', 'aes', 'office'] as const) {
    it(`${payload}: the archive, then its password mail: released once, through the release code; the password mail relayed as it came`, async () => {
      await start();
      const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: 'Kx7#p2mQ', payload };
      const archive = await archiveMail(pair);
      const id = quarantinedId(await send(TARO, [SATO], archive));
      const held = meta(id);
      assert.ok(held.findings.some((f) => /ENCRYPTED_UNSCANNABLE/.test(f.symbol)));
      await waitFor('ppap_held', () => gw.events('ppap_held').find((e) => e.id === id));

      const passwords = await passwordMail(pair);
      assert.match(await send(TARO, [SATO], passwords), /^250 2\.0\.0 Ok: queued as SINK/);
      assert.ok(sink.messages[0].bytes.equals(passwords), 'the password mail is relayed byte for byte, before the retry');
      const retry = await retried(gw, id);
      assert.equal(retry.outcome, 'released', JSON.stringify(retry));

      const copies = releasedCopies(id);
      assert.equal(copies.length, 1);
      const header = copies[0].bytes.indexOf('\r\n') + 2;
      assert.match(copies[0].bytes.subarray(0, header).toString(), /^X-Mailmoat-Released: id=\w+; by=gateway; at=/);
      assert.ok(copies[0].bytes.subarray(header).equals(archive), 'the released copy is the held message, byte for byte');
      assert.deepEqual(copies[0].rcptLines, [`RCPT TO:<${SATO}>`]);

      const after = meta(id);
      assert.equal(after.state, 'released');
      assert.deepEqual(
        after.history.map((h) => h.event),
        ['quarantined', 'password-rescan', 'release-started', 'released'],
      );
      assert.ok(!after.findings.some((f) => /ENCRYPTED_UNSCANNABLE/.test(f.symbol)), JSON.stringify(after.findings));
      const lines = audit().filter((l) => l.id === id);
      assert.deepEqual(
        lines.map((l) => `${String(l.action)}:${String(l.result)}`),
        ['password-wait:waiting', 'password-retry:clean', 'release:released'],
      );
      assert.match(String(lines[2].note), /password from message/);
      assert.equal(lines[1].passwordMail, gw.events('message').at(-1)!.id);

      // once only: the same password mail again finds nothing to release
      await send(TARO, [SATO], passwords);
      await checked(gw, 2);
      assert.equal(releasedCopies(id).length, 1);
    });
  }

  it('the password mail first, then the archive (English, AES): released right after it is held', async () => {
    await start();
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: 'Welcome1!', payload: 'aes', lang: 'en' };
    await send(TARO, [SATO], await passwordMail(pair));
    const archive = await archiveMail(pair);
    const id = quarantinedId(await send(TARO, [SATO], archive));
    assert.equal((await retried(gw, id)).outcome, 'released');
    assert.equal(releasedCopies(id).length, 1);
    assert.equal(meta(id).state, 'released');
  });

  for (const payload of ['zipcrypto', 'office'] as const) {
    it(`${payload}: a password that opens a macro document: stays held, its metadata naming OFFICE_MACRO`, async () => {
      await start();
      const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: '2021', payload, macro: true };
      const id = quarantinedId(await send(TARO, [SATO], await archiveMail(pair)));
      await send(TARO, [SATO], await passwordMail(pair));
      const retry = await retried(gw, id);
      assert.equal(retry.outcome, 'held');
      assert.ok((retry.symbols as string[]).includes('OFFICE_MACRO'));
      const after = meta(id);
      assert.equal(after.state, 'held');
      assert.ok(after.findings.some((f) => f.symbol === 'OFFICE_MACRO'));
      assert.ok(!after.findings.some((f) => /ENCRYPTED_UNSCANNABLE/.test(f.symbol)));
      assert.match(after.verdict.reason, /OFFICE_MACRO/);
      assert.match(after.history.at(-1)!.detail!, /opened it: .*OFFICE_MACRO.*; verdict quarantine/);
      assert.equal(releasedCopies(id).length, 0);
      assert.deepEqual(
        audit()
          .filter((l) => l.id === id)
          .map((l) => l.result),
        ['waiting', 'held'],
      );
    });
  }

  it('after the wait: the password mail is not tried on the item', async () => {
    await start(['office.passwordWait=500ms']);
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: '7531', payload: 'zipcrypto' };
    const id = quarantinedId(await send(TARO, [SATO], await archiveMail(pair)));
    await new Promise((r) => setTimeout(r, 800));
    await send(TARO, [SATO], await passwordMail(pair));
    const looked = (await checked(gw, 1)) && gw.events('ppap_passwords')[0];
    assert.deepEqual(looked.held, []);
    assert.equal(gw.events('ppap_retry').length, 0);
    assert.equal(meta(id).state, 'held');
  });

  it('from another sender: not tried, not released', async () => {
    await start();
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: '7531', payload: 'zipcrypto' };
    const id = quarantinedId(await send(TARO, [SATO], await archiveMail(pair)));
    await send('hanako@internal.test', [SATO], await passwordMail({ ...pair, from: 'Hanako <hanako@internal.test>' }));
    assert.deepEqual((await checked(gw, 1)) && gw.events('ppap_passwords')[0].held, []);
    assert.equal(meta(id).state, 'held');
    assert.equal(releasedCopies(id).length, 0);
  });

  it('to disjoint recipients: not tried; to one recipient in common: released to all the original recipients', async () => {
    await start();
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO, 'ito@partner.test'], password: '7531', payload: 'zipcrypto' };
    const id = quarantinedId(await send(TARO, pair.to, await archiveMail(pair)));
    await send(TARO, ['kato@other.test'], await passwordMail({ ...pair, to: ['kato@other.test'] }));
    assert.deepEqual((await checked(gw, 1)) && gw.events('ppap_passwords')[0].held, []);
    assert.equal(meta(id).state, 'held');

    await send(TARO, ['ITO@partner.test', 'kato@other.test'], await passwordMail({ ...pair, to: ['ito@partner.test', 'kato@other.test'] }));
    assert.equal((await retried(gw, id)).outcome, 'released');
    assert.deepEqual(releasedCopies(id)[0].rcptLines, [`RCPT TO:<${SATO}>`, 'RCPT TO:<ito@partner.test>']);
  });

  it('two held items: each password mail opens its own, a wrong password changes nothing', async () => {
    await start();
    const first: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: 'Ab-1111', payload: 'zipcrypto', name: '見積書' };
    const second: PairOptions = { ...first, password: 'Cd-2222', payload: 'aes', name: '請求書' };
    const a = quarantinedId(await send(TARO, [SATO], await archiveMail(first)));
    const b = quarantinedId(await send(TARO, [SATO], await archiveMail(second)));

    await send(TARO, [SATO], await passwordMail({ ...first, password: 'Zz-9999' }));
    await waitFor('two retries', () => gw.events('ppap_retry').length >= 2);
    assert.deepEqual(
      gw.events('ppap_retry').map((e) => e.outcome),
      ['still-locked', 'still-locked'],
    );
    assert.deepEqual(
      audit()
        .filter((l) => l.action === 'password-retry')
        .map((l) => l.result),
      ['still-locked', 'still-locked'],
    );
    assert.deepEqual(
      meta(a).history.map((h) => h.event),
      ['quarantined'],
    );

    await send(TARO, [SATO], await passwordMail(first));
    await waitFor('a released', () => gw.events('ppap_retry').find((e) => e.id === a && e.outcome === 'released'));
    await send(TARO, [SATO], await passwordMail(second));
    await waitFor('b released', () => gw.events('ppap_retry').find((e) => e.id === b && e.outcome === 'released'));
    assert.equal(releasedCopies(a).length, 1);
    assert.equal(releasedCopies(b).length, 1);
    assert.equal(meta(a).state, 'released');
    assert.equal(meta(b).state, 'released');
  });

  it(`after ${MAX_TRIES} password mails that open nothing, the item is no longer tried; it stays held`, async () => {
    await start();
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: 'Right-1', payload: 'zipcrypto' };
    const id = quarantinedId(await send(TARO, [SATO], await archiveMail(pair)));
    for (let i = 0; i < MAX_TRIES; i++) {
      await send(TARO, [SATO], await passwordMail({ ...pair, password: `Wrong-${i}` }));
      await waitFor(`retry ${i}`, () => gw.events('ppap_retry').length > i);
    }
    await waitFor('ppap_forgotten', () => gw.events('ppap_forgotten').find((e) => e.id === id));
    await send(TARO, [SATO], await passwordMail(pair));
    await checked(gw, MAX_TRIES + 1);
    assert.equal(gw.events('ppap_retry').length, MAX_TRIES);
    assert.equal(meta(id).state, 'held');
  });

  it('office.passwordRelease false: opened and clean, it stays held and says so', async () => {
    await start(['office.passwordRelease=false']);
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: '7531', payload: 'zipcrypto' };
    const id = quarantinedId(await send(TARO, [SATO], await archiveMail(pair)));
    await send(TARO, [SATO], await passwordMail(pair));
    const retry = await retried(gw, id);
    assert.equal(retry.outcome, 'clean-held');
    assert.match(String(retry.reason), /office\.passwordRelease is off/);
    const after = meta(id);
    assert.equal(after.state, 'held');
    assert.equal(after.verdict.action, 'relay');
    assert.equal(releasedCopies(id).length, 0);
  });
});

describe('separate password mail across two gateway nodes sharing Redis', function () {
  this.timeout(60_000);
  let redis: RedisClient;
  let prefix: string;
  before(async () => {
    redis = await testRedis();
    prefix = uniquePrefix();
  });
  after(async () => {
    await removePrefix(redis, prefix); // the thread memory's keys; the pairing keys expire with the 60 s wait
    redis.disconnect();
  });

  it('the archive through one node, the password through the other: released once', async () => {
    const sink = await startSink();
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-ppap-'));
    const state = { kind: 'redis' as const, redis, failMode: 'open' as const };
    const overrides = [`quarantine.dir=${dir}`, `spoof.keyPrefix="${prefix}"`, `rate.keyPrefix="${prefix}rate:"`, 'office.passwordWait=60s'];
    const nodeA = await startGateway(sink.port, overrides, { state });
    const nodeB = await startGateway(sink.port, overrides, { state });
    try {
      // a sender unique to the run: the Redis records of other runs cannot pair with it
      const sender = `taro-${prefix.replace(/[^a-z0-9]/g, '')}@internal.test`;
      const pair: PairOptions = { from: sender, to: [SATO], password: 'Node-42', payload: 'aes' };
      const held = await transaction(nodeA.port, `MAIL FROM:<${sender}>`, [`RCPT TO:<${SATO}>`], await archiveMail(pair));
      const id = quarantinedId(text(held.data));
      await waitFor('ppap_held', () => nodeA.events('ppap_held').find((e) => e.id === id));
      await transaction(nodeB.port, `MAIL FROM:<${sender}>`, [`RCPT TO:<${SATO}>`], await passwordMail(pair));
      const retry = await waitFor('ppap_retry on node B', () => nodeB.events('ppap_retry').find((e) => e.id === id));
      assert.equal(retry.outcome, 'released');
      assert.equal(sink.messages.filter((m) => m.bytes.toString('latin1').startsWith(`X-Mailmoat-Released: id=${id};`)).length, 1);
    } finally {
      await nodeA.close();
      await nodeB.close();
      await sink.close();
    }
  });
});

describe('separate password mail with Redis down', function () {
  this.timeout(30_000);

  it('the archive is held and answered as before; the pairing logs that the state is unreachable', async () => {
    const sink = await startSink();
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-ppap-'));
    const down = createRedisClient({ backend: 'redis', url: `redis://127.0.0.1:${await freePort()}`, failMode: 'open' });
    down.on('error', () => undefined);
    const gw = await startGateway(sink.port, [`quarantine.dir=${dir}`], { state: { kind: 'redis', redis: down, failMode: 'open' } });
    try {
      const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: '7531', payload: 'zipcrypto' };
      const held = await transaction(gw.port, `MAIL FROM:<${TARO}>`, [`RCPT TO:<${SATO}>`], await archiveMail(pair));
      const id = quarantinedId(text(held.data));
      const [event] = await waitFor('ppap_state_unavailable', () => gw.events('ppap_state_unavailable').length > 0 && gw.events('ppap_state_unavailable'));
      assert.equal(event.id, id);
      const relayed = await transaction(gw.port, `MAIL FROM:<${TARO}>`, [`RCPT TO:<${SATO}>`], await passwordMail(pair));
      assert.match(text(relayed.data), /^250 2\.0\.0 Ok: queued as SINK/);
      await waitFor('second ppap_state_unavailable', () => gw.events('ppap_state_unavailable').length > 1);
      const meta = JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata;
      assert.equal(meta.state, 'held');
    } finally {
      await gw.close();
      await sink.close();
      down.disconnect();
    }
  });
});

describe('separate password mail through the milter', function () {
  this.timeout(60_000);
  let sink: Sink;
  let dir: string;
  let milter: RunningMilter;
  beforeEach(async () => {
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-ppap-milter-'));
    // the release goes where `mailmoat quarantine release` would send it: the policy's downstream
    milter = await startMilter([`quarantine.dir=${dir}`, `downstream.port=${sink.port}`, 'downstream.starttls=off']);
  });
  afterEach(async () => {
    await milter.close();
    await sink.close();
  });

  /** One message as Postfix hands it over; the replies after end of message. */
  async function deliver(from: string, to: string[], message: Buffer): Promise<string[]> {
    const client = await MilterClient.connect(milter.port);
    try {
      client.send(OPTNEG_POSTFIX);
      await client.read();
      client.send(
        ...envelopePackets(
          `<${from}>`,
          to.map((t) => `<${t}>`),
        ),
        ...messagePackets(message, { leadingSpace: true }),
        packet('E'),
      );
      return (await client.readFinal(30_000)).map(show);
    } finally {
      client.close();
    }
  }

  it('the archive (discarded into our quarantine), then the password mail (continue): the archive is released downstream', async () => {
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: 'Kx7#p2mQ', payload: 'zipcrypto' };
    assert.deepEqual(await deliver(TARO, [SATO], await archiveMail(pair)), ['d']);
    const id = String(milter.events('message').at(-1)!.id);
    await milter.waitEvent('ppap_held');
    assert.deepEqual(await deliver(TARO, [SATO], await passwordMail(pair)), ['c']);
    const [retry] = await milter.waitEvent('ppap_retry');
    assert.equal(retry.id, id);
    assert.equal(retry.outcome, 'released');
    assert.equal(sink.messages.length, 1, 'only the released archive: Postfix itself delivers the password mail');
    assert.match(sink.messages[0].bytes.toString('latin1'), new RegExp(`^X-Mailmoat-Released: id=${id}; by=gateway;`));
    assert.deepEqual(sink.messages[0].rcptLines, [`RCPT TO:<${SATO}>`]);
  });

  it('a password that opens an encrypted macro document: stays held with OFFICE_MACRO', async () => {
    const pair: PairOptions = { from: `Taro <${TARO}>`, to: [SATO], password: '2021', payload: 'office', macro: true };
    assert.deepEqual(await deliver(TARO, [SATO], await archiveMail(pair)), ['d']);
    const id = String(milter.events('message').at(-1)!.id);
    await deliver(TARO, [SATO], await passwordMail(pair));
    const [retry] = await milter.waitEvent('ppap_retry');
    assert.equal(retry.outcome, 'held');
    const after = JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata;
    assert.equal(after.state, 'held');
    assert.ok(after.findings.some((f) => f.symbol === 'OFFICE_MACRO'));
    assert.equal(sink.messages.length, 0);
  });
});
