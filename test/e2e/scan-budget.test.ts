// The scan budget through both front ends: a message's scan is bounded as a whole and held with
// the reason when the budget runs out; when the client (or the MTA) goes away mid-scan, the scan
// stops and nothing is held for a message nobody was told about.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { envelopePackets, messagePackets, MilterClient, OPTNEG_POSTFIX, packet, show } from '../helpers/milter-client.js';
import { startMilter } from '../helpers/milter-server.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { buildDocx, buildVbaCfb } from '../fixtures/office/container-builders.js';
import { buildAgileEncrypted } from '../fixtures/office/ole-builders.js';
import { emailWith } from '../fixtures/office/emails.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';
/** a budget far larger than the test: only the client going away ends these scans early */
const GENEROUS = ['office.timeout=10m', 'office.maxPasswordAttempts=1000'];

/** Three encrypted documents no password opens and 20 candidate passwords: about a minute of key derivations. */
async function heavyMessage(): Promise<Buffer> {
  const docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
  const docs = Array.from({ length: 3 }, () => buildAgileEncrypted(docm, 'not-guessable', 400_000));
  const passwords = Array.from({ length: 20 }, (_, i) => `Password: guess${i}`).join('\r\n');
  return emailWith(
    docs.map((content, i) => ({ filename: `locked${i}.docx`, content })),
    { text: `${passwords}\r\n` },
  );
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeout = 20_000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('scan budget through the front ends', function () {
  this.timeout(60_000);
  let sink: Sink;
  let heavy: Buffer;
  before(async () => {
    sink = await startSink();
    heavy = await heavyMessage();
  });
  after(async () => sink.close());

  it("SMTP: a message whose scan outlasts office.timeout is quarantined, the finding says the message's time is spent", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-budget-'));
    const gw = await startGateway(sink.port, [`quarantine.dir=${dir}`, 'office.timeout=1s', 'office.maxPasswordAttempts=1000']);
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], heavy);
      assert.match(text(r.data), /^250 2\.0\.0 Ok: quarantined as /);
      const log = gw.events('message').at(-1)!;
      const findings = log.findings as { symbol: string; part: string; detail: string }[];
      assert.ok(
        findings.some((f) => f.symbol === 'ARCHIVE_LIMIT' && /scan time of 1000 ms is spent/.test(f.detail)),
        JSON.stringify(findings),
      );
      // every document is accounted for: none of them came out clean
      for (const name of ['locked0.docx', 'locked1.docx', 'locked2.docx']) {
        assert.ok(
          findings.some((f) => f.part.startsWith(name)),
          `${name}: ${JSON.stringify(findings)}`,
        );
      }
    } finally {
      await gw.close();
    }
  });

  it('SMTP: the client goes away mid-scan: the scan stops, nothing is quarantined or relayed, the log says so', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-budget-'));
    const gw = await startGateway(sink.port, [`quarantine.dir=${dir}`, ...GENEROUS]);
    const before = sink.messages.length;
    try {
      // the whole transaction in one write, dot included: the scan starts as soon as it is in
      const eml = heavy.toString('latin1').replace(/^\./gm, '..');
      const socket = net.connect({ host: '127.0.0.1', port: gw.port });
      socket.on('error', () => undefined);
      socket.write(`EHLO gone.test\r\n${MAIL}\r\n${RCPT}\r\nDATA\r\n${eml}.\r\n`, 'latin1');
      await waitFor('the scan to start', () => (socket.bytesWritten >= eml.length ? true : undefined));
      await new Promise((r) => setTimeout(r, 1500));
      socket.resetAndDestroy();
      const abandoned = await waitFor('transaction_abandoned', () => gw.events('transaction_abandoned').at(-1));
      assert.equal(abandoned.reason, 'client_gone');
      // the transaction's own line comes once the scan has stopped (it would take about a minute to run out)
      const line = await waitFor('the message line', () => gw.events('message').find((l) => l.id === abandoned.id), 15_000);
      assert.equal(line.verdict, 'abandoned');
      assert.equal(line.quarantined, undefined);
      assert.deepEqual(readdirSync(dir), []);
      assert.equal(sink.messages.length, before);
      // the workers are free for the next client: its macro document is found as usual
      const docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
      const next = await transaction(gw.port, MAIL, [RCPT], await emailWith([{ filename: 'invoice.docm', content: docm }]));
      assert.match(text(next.data), /^250 2\.0\.0 Ok: quarantined as /);
    } finally {
      await gw.close();
    }
  });

  it('milter: the MTA goes away mid-scan: the scan stops and nothing is quarantined', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-budget-'));
    const m = await startMilter([`quarantine.dir=${dir}`, ...GENEROUS]);
    try {
      const client = await MilterClient.connect(m.port);
      client.send(OPTNEG_POSTFIX);
      await client.read();
      client.send(...envelopePackets(), ...messagePackets(heavy, { leadingSpace: true }), packet('E'));
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(client.unread > 0 ? show(await client.read()) : 'nothing yet', 'nothing yet', 'the scan was still running');
      client.close();
      const abandoned = await m.waitEvent('transaction_abandoned');
      const line = await waitFor('the message line', () => m.events('message').find((l) => l.id === abandoned[0].id), 15_000);
      assert.equal(line.verdict, 'abandoned');
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      await m.close();
    }
  });
});
