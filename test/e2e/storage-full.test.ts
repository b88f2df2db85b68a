// A full disk loses nothing: when the spool or the quarantine cannot be written for want of space,
// the client hears 452 4.3.1 (keep the message, try later), nothing is relayed or half-kept, and the
// same message goes through once there is room. On a small tmpfs of its own (needs root to mount).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { envelopePackets, messagePackets, MilterClient, OPTNEG_POSTFIX, packet, show } from '../helpers/milter-client.js';
import { startMilter } from '../helpers/milter-server.js';
import { withRelay } from '../helpers/relay.js';
import { sha256 } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';
const HOLD = 'rules.headers=[{symbol: SUBJECT_HOLD, header: Subject, match: "^hold", action: quarantine}]';

/** Mounts a tmpfs of `size`; undefined (and the suite skipped) where that is not possible. */
function smallDisk(size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

/** Fills the disk up to `leave` bytes free with one filler file; returns a function that frees it. */
function fill(disk: string, leave: number): () => void {
  const { bavail, bsize } = statfsSync(disk);
  const filler = path.join(disk, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - leave)));
  return () => rmSync(filler);
}

/** The files under `dir` once the gateway has disposed of them (it answers first, then removes). */
async function settledFiles(dir: string): Promise<string[]> {
  for (let i = 0; i < 100 && filesUnder(dir).length; i++) await new Promise((r) => setTimeout(r, 20));
  return filesUnder(dir);
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => !f.endsWith('audit.log'));
  } catch {
    return [];
  }
}

describe('a full disk loses nothing', function () {
  let disk: string | undefined;
  before(function () {
    disk = smallDisk('1m');
    if (!disk) {
      console.log('      (skipped: needs root and mount(8) to put the spool on a small tmpfs)');
      this.skip();
    }
  });
  after(() => {
    if (disk) execFileSync('umount', [disk]);
  });

  it('spool: 452 4.3.1 after the data, nothing relayed, no file left; relayed byte for byte once there is room', async () => {
    const spool = path.join(disk!, 'spool');
    mkdirSync(spool, { recursive: true });
    const message = messages.withAttachment(300 * 1024);
    await withRelay({ policy: [`spool.dir=${spool}`, 'spool.memoryLimit=16KB'] }, async ({ gw, sink }) => {
      const free = fill(disk!, 64 * 1024);
      const refused = await transaction(gw.port, MAIL, [RCPT], message);
      assert.match(text(refused.data), /^452 4\.3\.1 Insufficient system storage/);
      assert.equal(sink.messages.length, 0);
      assert.deepEqual(await settledFiles(spool), []);
      free();
      const retried = await transaction(gw.port, MAIL, [RCPT], message);
      assert.equal(retried.data?.code, 250);
      assert.equal(sink.messages.at(-1)!.sha256, sha256(message));
      assert.deepEqual(await settledFiles(spool), []);
    });
  });

  it('quarantine: 452 4.3.1, no partial item; held once there is room', async () => {
    const quarantine = path.join(disk!, 'quarantine');
    const message = Buffer.from(`Subject: hold this\r\nFrom: alice@internal.test\r\n\r\n${'z'.repeat(200 * 1024)}\r\n`);
    await withRelay({ policy: [HOLD, `quarantine.dir=${quarantine}`] }, async ({ gw, sink }) => {
      const free = fill(disk!, 16 * 1024);
      const refused = await transaction(gw.port, MAIL, [RCPT], message);
      assert.match(text(refused.data), /^452 4\.3\.1 /);
      assert.deepEqual(filesUnder(quarantine), [], 'no half-written item');
      free();
      const held = await transaction(gw.port, MAIL, [RCPT], message);
      assert.match(text(held.data), /^250 2\.0\.0 Ok: quarantined as [0-9A-Z]{26}$/);
      assert.equal(sink.messages.length, 0);
      assert.equal(filesUnder(quarantine).filter((f) => f.endsWith('.eml')).length, 1);
    });
  });

  it('milter: a spool without room answers 452 4.3.1 at end of message (the MTA keeps the message)', async () => {
    const spool = path.join(disk!, 'milter-spool');
    mkdirSync(spool, { recursive: true });
    const m = await startMilter([`spool.dir=${spool}`, 'spool.memoryLimit=16KB']);
    const free = fill(disk!, 32 * 1024);
    try {
      const client = await MilterClient.connect(m.port);
      client.send(OPTNEG_POSTFIX);
      await client.read();
      const body = `From: a@internal.test\r\nSubject: big\r\n\r\n${'q'.repeat(76)}\r\n`.repeat(3000);
      client.send(...envelopePackets(), ...messagePackets(Buffer.from(body), { leadingSpace: true, chunk: 8192 }), packet('E'));
      const [reply] = await client.readFinal();
      assert.match(show(reply), /^y 452 4\.3\.1 Insufficient system storage/);
      client.close();
      await m.waitEvent('storage_full');
      assert.deepEqual(await settledFiles(spool), []);
    } finally {
      free();
      await m.close();
    }
  });
});
