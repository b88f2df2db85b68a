// No silent loss, under the faults a gateway meets: a few hundred messages from concurrent clients
// while the downstream MTA crashes and comes back, the gateway is drained (SIGTERM) and restarted,
// and clients vanish mid-DATA. Every message that got a 250 is at the downstream byte for byte,
// and the spool is empty at the end. (A retried message may arrive twice: at least once, never zero.)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SmtpClient } from '../../src/relay/smtp-client.js';
import { inData, sendData } from '../helpers/client.js';
import { freePort } from '../helpers/global.js';
import { serve, tempPolicy, type Served } from '../helpers/served.js';
import { startSink, type Sink } from '../helpers/sink.js';

const MESSAGES = 300;
const CLIENTS = 10;

function message(n: number): Buffer {
  // sizes from 1 KB to ~190 KB: some stay in memory, some spill to the spool file (64 KB limit)
  const size = 1024 + ((n * 7919) % 190) * 1024;
  const line = `line of message ${n} `.padEnd(76, '.') + '\r\n';
  return Buffer.from(
    `From: a${n}@internal.test\r\nTo: b@outside.test\r\nMessage-ID: <${n}@no-loss.test>\r\nSubject: ${n}\r\n\r\n${line.repeat(Math.ceil(size / 78))}`,
  );
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One attempt: true when the gateway said 250. A 5xx is a failure of the test (nothing here should be refused). */
async function attempt(port: number, n: number, bytes: Buffer): Promise<boolean> {
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect({ host: '127.0.0.1', port, connectTimeout: 2000, commandTimeout: 20000 });
    await client.ehlo('client.test');
    const mail = await client.command(`MAIL FROM:<a${n}@internal.test>`);
    const rcpt = mail.code === 250 ? await client.command('RCPT TO:<b@outside.test>') : mail;
    const data = rcpt.code === 250 ? await sendData(client, bytes) : rcpt;
    assert.ok(data.code < 500, `message ${n}: ${data.code} ${data.lines.join(' ')}`);
    return data.code === 250;
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return false; // connection refused or cut: the client keeps the message and tries again
  } finally {
    client?.close();
  }
}

/** A client that sends part of the message, then vanishes. */
async function vanish(port: number, n: number, bytes: Buffer): Promise<void> {
  try {
    const socket = await inData(port, `MAIL FROM:<a${n}@internal.test>`, 'RCPT TO:<b@outside.test>');
    socket.on('error', () => undefined);
    socket.write(bytes.subarray(0, bytes.length >> 1));
    await new Promise((r) => setTimeout(r, 5));
    if (n % 2) socket.resetAndDestroy();
    else socket.destroy();
  } catch {
    // the gateway or downstream is down right now: nothing to vanish from
  }
}

describe('no silent loss under faults', function () {
  this.timeout(120_000);

  it(`${MESSAGES} messages, ${CLIENTS} clients: downstream crashed twice, gateway drained and restarted, clients vanishing mid-DATA`, async () => {
    const spool = mkdtempSync(path.join(tmpdir(), 'mailmoat-noloss-spool-'));
    const downstreamPort = await freePort();
    const gatewayPort = await freePort();
    const policy = tempPolicy('');
    const args = ['--set', `spool.dir=${spool}`, '--set', 'spool.memoryLimit=64KB', '--set', 'timeouts.drain=3s', '--set', 'timeouts.downstreamConnect=1s'];
    const sinks: Sink[] = [await startSink({ port: downstreamPort })];
    let gw: Served = await serve(policy, downstreamPort, args, gatewayPort);
    const acked = new Map<number, string>();
    const queue = Array.from({ length: MESSAGES }, (_, i) => i);
    let attempts = 0;
    let vanished = 0;

    const worker = async () => {
      while (acked.size < MESSAGES) {
        const n = queue.shift();
        if (n === undefined) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const bytes = message(n);
        attempts++;
        if (attempts % 9 === 0) {
          vanished++;
          await vanish(gatewayPort, n, bytes);
          queue.push(n);
          continue;
        }
        if (await attempt(gatewayPort, n, bytes)) acked.set(n, sha256(bytes));
        else {
          queue.push(n);
          await new Promise((r) => setTimeout(r, 30));
        }
      }
    };

    const progress = setInterval(() => console.log(`      ... ${acked.size} acknowledged, ${attempts} attempts, queue ${queue.length}`), 10_000);
    const at = async (count: number) => {
      while (acked.size < count) await new Promise((r) => setTimeout(r, 10));
    };
    const faults = async () => {
      await at(60);
      await sinks.at(-1)!.crash();
      await new Promise((r) => setTimeout(r, 500));
      sinks.push(await startSink({ port: downstreamPort }));
      await at(140);
      gw.child.kill('SIGTERM');
      assert.equal(await gw.exited, 0, 'the drained gateway exits 0');
      gw = await serve(policy, downstreamPort, args, gatewayPort);
      await at(220);
      await sinks.at(-1)!.crash();
      await new Promise((r) => setTimeout(r, 300));
      sinks.push(await startSink({ port: downstreamPort }));
    };

    try {
      await Promise.all([faults(), ...Array.from({ length: CLIENTS }, worker)]);
      gw.child.kill('SIGTERM');
      assert.equal(await gw.exited, 0);
      const delivered = new Set(sinks.flatMap((s) => s.messages.map((m) => m.sha256)));
      const lost = [...acked].filter(([, digest]) => !delivered.has(digest)).map(([n]) => n);
      assert.deepEqual(lost, [], 'every message that got a 250 reached the downstream, byte for byte');
      assert.deepEqual(readdirSync(spool), [], 'nothing left in the spool');
      console.log(
        `      (${acked.size} acknowledged, ${attempts} attempts, ${vanished} clients vanished mid-DATA, ` +
          `${sinks.reduce((n, s) => n + s.messages.length, 0)} delivered incl. retries of unacknowledged ones)`,
      );
    } finally {
      clearInterval(progress);
      gw.child.kill('SIGKILL');
      await Promise.all(sinks.map((s) => s.close()));
    }
  });
});
