// limits.memoryBudget through real sockets: messages larger than the whole budget, sent at once, all
// come out right (relayed byte for byte or quarantined), one after another; a client that leaves
// while its message waits takes nothing with it; the milter waits in the same queue.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { memoryBudget, type Lease } from '../../src/message/memory-budget.js';
import { registry } from '../../src/observe/metrics.js';
import { inData, text, transaction } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { envelopePackets, messagePackets, MilterClient, OPTNEG_POSTFIX, packet, show } from '../helpers/milter-client.js';
import { startMilter } from '../helpers/milter-server.js';
import { sha256, startSink, type Sink } from '../helpers/sink.js';
import { buildDocx, buildVbaCfb } from '../fixtures/office/container-builders.js';
import { emailWith, type AttachmentSpec } from '../fixtures/office/emails.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';
const MB = 1024 * 1024;

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !condition();) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waits(front: string): Promise<number> {
  const metric = await registry.getSingleMetric('mailmoat_memory_budget_waits_total')!.get();
  return metric.values.filter((v) => v.labels.front === front).reduce((n, v) => n + v.value, 0);
}

/** A ~3 MB message: a binary attachment, and a macro document when `macro`. */
async function largeMessage(i: number, macro: boolean): Promise<Buffer> {
  const attachments: AttachmentSpec[] = [{ filename: `scan-${i}.bin`, content: randomBytes(2 * MB + i), contentType: 'application/octet-stream' }];
  if (macro)
    attachments.push({
      filename: `invoice-${i}.docm`,
      content: await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() }),
      contentType: 'application/octet-stream',
    });
  return emailWith(attachments, { subject: `large ${i}` });
}

describe('the memory budget (limits.memoryBudget)', function () {
  let sink: Sink;
  let capacity: number;
  before(async () => {
    sink = await startSink();
    capacity = memoryBudget.capacity;
  });
  after(async () => {
    memoryBudget.capacity = capacity;
    await sink.close();
  });

  /** Holds the whole budget, as a message under inspection would: whatever comes next waits. */
  async function holdWholeBudget(budget: number): Promise<Lease> {
    memoryBudget.capacity = budget;
    return memoryBudget.acquire(budget);
  }

  it('six concurrent ~3 MB messages queued under a 2 MB budget: every one relayed byte for byte or quarantined, none refused', async () => {
    const quarantineDir = mkdtempSync(path.join(tmpdir(), 'mailmoat-budget-q-'));
    const gw = await startGateway(sink.port, ['limits.memoryBudget=2MB', `quarantine.dir=${quarantineDir}`]);
    const waitsBefore = await waits('smtp');
    const messages = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => largeMessage(i, i % 3 === 0)));
    assert.ok(messages.every((m) => m.length > 2 * MB));
    // held until all six are in and waiting, so that every one of them queues; then they go one at a time
    const held = await holdWholeBudget(2 * MB);
    try {
      const sent = Promise.all(messages.map((m) => transaction(gw.port, MAIL, [RCPT], m)));
      await until(() => memoryBudget.waiters === 6, 'all six messages to wait for the budget', 30_000);
      held.release();
      const replies = (await sent).map((r) => text(r.data));
      console.log(`      replies: ${replies.map((r) => r.replace(/ [0-9A-Z]{26}$/, '')).join(' | ')}`);
      messages.forEach((message, i) => {
        if (i % 3 === 0) assert.match(replies[i], /^250 2\.0\.0 Ok: quarantined as /, `message ${i}`);
        else {
          assert.match(replies[i], /^250 2\.0\.0 Ok: queued as SINK/, `message ${i}`);
          assert.ok(
            sink.messages.some((m) => m.sha256 === sha256(message)),
            `message ${i} at the downstream byte for byte`,
          );
        }
      });
      const quarantined = gw.events('message').filter((l) => l.verdict === 'quarantine');
      assert.equal(quarantined.length, 2);
      for (const line of quarantined) assert.ok((line.symbols as string[]).includes('OFFICE_MACRO'), JSON.stringify(line.symbols));
      assert.equal((await waits('smtp')) - waitsBefore, 6);
      assert.equal(memoryBudget.inUse, 0, 'nothing left held');
    } finally {
      held.release();
      await gw.close();
    }
  });

  it('a client that leaves while its message waits: nothing relayed or held, its spool file removed, the budget not leaked', async () => {
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'mailmoat-budget-spool-'));
    const gw = await startGateway(sink.port, ['limits.memoryBudget=2MB', `spool.dir=${spoolDir}`]);
    const relayed = sink.messages.length;
    const held = await holdWholeBudget(2 * MB);
    try {
      const socket = await inData(gw.port);
      socket.on('error', () => undefined);
      socket.write(await largeMessage(9, false));
      socket.write('.\r\n');
      await until(() => memoryBudget.waiters === 1, 'the message to wait for the budget');
      assert.equal(readdirSync(spoolDir).length, 1, 'the waiting message is in its spool file');
      socket.destroy();
      await until(() => gw.events('transaction_abandoned').length === 1, 'the transaction to be abandoned');
      await until(() => memoryBudget.waiters === 0 && readdirSync(spoolDir).length === 0, 'the waiter and its file to go');
      assert.equal(memoryBudget.inUse, 2 * MB, 'only what the test holds');
      held.release();
      const after = await largeMessage(10, false);
      const r = await transaction(gw.port, MAIL, [RCPT], after);
      assert.match(text(r.data), /^250 /);
      assert.equal(sink.messages.length, relayed + 1, 'only the later message reached the downstream');
      assert.equal(sink.messages.at(-1)!.sha256, sha256(after));
    } finally {
      held.release();
      await gw.close();
    }
  });

  it("waiting for the budget is the gateway's time, not the client's: longer than timeouts.client, and the message is relayed", async () => {
    const gw = await startGateway(sink.port, ['limits.memoryBudget=2MB', 'timeouts.client=1s']);
    const held = await holdWholeBudget(2 * MB);
    try {
      const message = await largeMessage(13, false);
      const sent = transaction(gw.port, MAIL, [RCPT], message);
      await until(() => memoryBudget.waiters === 1, 'the message to wait for the budget');
      await new Promise((r) => setTimeout(r, 1500));
      held.release();
      assert.match(text((await sent).data), /^250 2\.0\.0 Ok: queued as SINK/);
      assert.equal(sink.messages.at(-1)!.sha256, sha256(message));
    } finally {
      held.release();
      await gw.close();
    }
  });

  it('the milter waits in the same queue, telling the MTA it is still working, and gets its verdict when its turn comes', async () => {
    const m = await startMilter(['limits.memoryBudget=2MB', 'milter.progressInterval=50ms']);
    const held = await holdWholeBudget(2 * MB);
    const waitsBefore = await waits('milter');
    try {
      const client = await MilterClient.connect(m.port);
      client.send(OPTNEG_POSTFIX);
      await client.read();
      client.send(...envelopePackets(), ...messagePackets(await largeMessage(11, false), { leadingSpace: true }), packet('E'));
      await until(() => memoryBudget.waiters === 1, 'the milter message to wait for the budget');
      await new Promise((r) => setTimeout(r, 200));
      held.release();
      const replies = (await client.readFinal()).map(show);
      assert.equal(replies.at(-1), 'c', replies.join(' '));
      assert.ok(replies.filter((r) => r === 'p').length >= 2, `PROGRESS while waiting: ${replies.join(' ')}`);
      assert.equal((await waits('milter')) - waitsBefore, 1);
      assert.equal(m.events('message').at(-1)?.verdict, 'relay');

      // and one whose MTA goes away while it waits leaves no waiter behind
      const again = await holdWholeBudget(2 * MB);
      const gone = await MilterClient.connect(m.port);
      gone.send(OPTNEG_POSTFIX);
      await gone.read();
      gone.send(...envelopePackets(), ...messagePackets(await largeMessage(12, false), { leadingSpace: true }), packet('E'));
      await until(() => memoryBudget.waiters === 1, 'the second milter message to wait');
      gone.close();
      await until(() => memoryBudget.waiters === 0, 'the waiter to leave with its MTA');
      again.release();
      assert.equal(memoryBudget.inUse, 0);
      client.close();
    } finally {
      held.release();
      await m.close();
    }
  });
});
