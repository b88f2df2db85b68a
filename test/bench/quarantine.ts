// Quarantine: write latency with fsync (the time the client waits for its 250 beyond the scan), and
// `list` over 100,000 items (time, memory). `npm run bench:quarantine`; figures only.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { messageId } from '../../src/observe/id.js';
import { QuarantineStore } from '../../src/quarantine/store.js';

const ITEMS = Number(process.env.BENCH_QUARANTINE_ITEMS ?? 100_000);
const WRITES = 300;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-bench-q-'));
  try {
    const store = new QuarantineStore(dir);
    const message = Buffer.concat([Buffer.from('Subject: bench\r\nFrom: a@b.test\r\n\r\n'), Buffer.from(randomBytes(36 * 1024).toString('base64'))]);
    const times: number[] = [];
    let template = '';
    for (let i = 0; i < WRITES; i++) {
      const id = messageId();
      const start = process.hrtime.bigint();
      await store.put(Readable.from([message]), {
        id,
        receivedAt: new Date().toISOString(),
        client: { address: '192.0.2.1', helo: 'bench' },
        envelope: { mailFrom: 'a@b.test', mailLine: 'MAIL FROM:<a@b.test>', rcptTo: ['c@d.test'], rcptLines: ['RCPT TO:<c@d.test>'] },
        size: message.length,
        findings: [{ symbol: 'OFFICE_MACRO', score: 10, part: 'x.docm > word/vbaProject.bin', detail: 'procedures: AutoOpen' }],
        verdict: { action: 'quarantine', score: 10, reason: 'OFFICE_MACRO' },
        policyVersion: 'bench',
      });
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
      template ||= readFileSync(path.join(dir, `${id}.json`), 'utf8')
        .replace(id, '__ID__')
        .replace(id, '__ID__');
    }
    times.sort((a, b) => a - b);
    console.log(
      `quarantine write (${(message.length / 1024).toFixed(0)} KB message + metadata, fsync, rename, dir fsync), ${WRITES} writes: p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms`,
    );

    // fill to ITEMS with copies of a real item (no fsync: this measures listing, not writing)
    for (let i = WRITES; i < ITEMS; i++) {
      const id = messageId();
      writeFileSync(path.join(dir, `${id}.json`), template.replaceAll('__ID__', id));
      writeFileSync(path.join(dir, `${id}.eml`), 'x');
    }
    global.gc?.();
    const before = process.memoryUsage();
    const start = process.hrtime.bigint();
    const { items, problems } = await store.list();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const after = process.memoryUsage();
    console.log(
      `list over ${items.length} items (${problems.length} problems): ${(ms / 1000).toFixed(2)} s, heap +${((after.heapUsed - before.heapUsed) / 1e6).toFixed(0)} MB, RSS ${(after.rss / 1e6).toFixed(0)} MB`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
