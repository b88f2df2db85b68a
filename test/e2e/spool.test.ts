// The spool leaves nothing behind: a message's file goes with the message, whether the client
// vanishes while it spills to disk, the gateway is stopped while the client is silent mid-DATA, or a
// gateway was killed outright (the next start removes what nobody owns).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inData } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { serve, tempPolicy } from '../helpers/served.js';
import { startSink } from '../helpers/sink.js';

function spoolDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'mailmoat-spool-'));
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !condition();) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the spool leaves nothing behind', function () {
  it('a client resetting the connection just as its message spills to disk leaves no file (40 tries)', async () => {
    const dir = spoolDir();
    const sink = await startSink();
    const gw = await startGateway(sink.port, [`spool.dir=${dir}`, 'spool.memoryLimit=64KB']);
    try {
      for (let i = 0; i < 40; i++) {
        const socket = await inData(gw.port);
        socket.on('error', () => undefined);
        // 128 KB over a 64 KB memory limit, then a reset: at once, after a turn of the loop, or a few ms later,
        // so that it lands while the spool opens its file, while it writes, or after (the old code leaked ~1 in 8)
        socket.write(Buffer.alloc(128 * 1024, 'x'.repeat(76) + '\r\n'));
        if (i % 3 === 1) await new Promise((r) => setImmediate(r));
        if (i % 3 === 2) await new Promise((r) => setTimeout(r, 1 + (i % 5)));
        socket.resetAndDestroy();
        await until(() => gw.gateway.activeTransactions === 0, 'the transaction to end');
      }
      await until(() => readdirSync(dir).length === 0, `an empty spool (left: ${readdirSync(dir).join(', ')})`, 3000);
      assert.equal(sink.messages.length, 0);
      assert.equal(gw.events('transaction_abandoned').length, 40);
    } finally {
      await gw.close();
      await sink.close();
    }
  });

  it('SIGTERM while a client is silent mid-DATA: exit at the drain deadline, file removed, the transaction logged', async () => {
    const dir = spoolDir();
    const sink = await startSink();
    const gw = await serve(tempPolicy(''), sink.port, ['--set', `spool.dir=${dir}`, '--set', 'spool.memoryLimit=16KB', '--set', 'timeouts.drain=1s']);
    try {
      const socket = await inData(gw.port);
      socket.on('error', () => undefined);
      socket.write(Buffer.alloc(64 * 1024, 'y'.repeat(62) + '\r\n'));
      await until(() => readdirSync(dir).length === 1, 'the message to spill to a file');
      gw.child.kill('SIGTERM');
      assert.equal(await gw.exited, 0);
      assert.deepEqual(readdirSync(dir), []);
      const abandoned = gw.logs.find((l) => l.event === 'transaction_abandoned');
      assert.equal(abandoned?.reason, 'shutdown', JSON.stringify(gw.logs.slice(3)));
      assert.equal(sink.messages.length, 0);
      socket.destroy();
    } finally {
      gw.child.kill('SIGKILL');
      await sink.close();
    }
  });

  it('at start-up, removes files whose process is gone (a gateway killed with -9), and keeps those of a running one', async () => {
    const dir = spoolDir();
    mkdirSync(dir, { recursive: true });
    const sink = await startSink();
    // a pid that is not running: far above any pid_max in use here
    const dead = 4_194_000 + Math.floor(Math.random() * 300);
    writeFileSync(path.join(dir, `${dead}-a.eml`), 'From: killed\r\n\r\nhalf');
    writeFileSync(path.join(dir, `${process.pid}-b.eml`), 'From: a running gateway\r\n\r\nstill writing');
    writeFileSync(path.join(dir, 'c.eml'), 'an older version, long gone');
    utimesSync(path.join(dir, 'c.eml'), new Date(Date.now() - 2 * 86_400_000), new Date(Date.now() - 2 * 86_400_000));
    writeFileSync(path.join(dir, 'notes.txt'), 'not ours');
    const gw = await serve(tempPolicy(''), sink.port, ['--set', `spool.dir=${dir}`]);
    try {
      assert.deepEqual(readdirSync(dir).sort(), [`${process.pid}-b.eml`, 'notes.txt']);
      const cleaned = gw.logs.find((l) => l.event === 'spool_cleaned');
      assert.equal(cleaned?.files, 2);
    } finally {
      gw.child.kill('SIGKILL');
      await sink.close();
    }
  });
});
