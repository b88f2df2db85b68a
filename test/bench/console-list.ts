// The console's quarantine list over 100,000 items: what the catalog (src/quarantine/catalog.ts)
// costs cold and warm, a page through the real console over HTTP, and after a change made elsewhere;
// beside it the CLI's way (read every ID.json, then filter) for comparison.
// `npm run bench:console`; figures only (BENCH_CONSOLE_ITEMS to change the count).
import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ulid } from 'ulid';
import { QuarantineCatalog } from '../../src/quarantine/catalog.js';
import { matches } from '../../src/quarantine/query.js';
import { QuarantineStore, type QuarantineMetadata } from '../../src/quarantine/store.js';
import { ConsoleClient, startTestConsole } from '../helpers/console.js';

const ITEMS = Number(process.env.BENCH_CONSOLE_ITEMS ?? 100_000);
const SYMBOLS = ['OFFICE_MACRO', 'SUBJECT_HOLD', 'SPOOF_THREAD_OUTSIDER', 'FILE_EXECUTABLE', 'ARCHIVE_ENCRYPTED_UNSCANNABLE'];
const DAY = 86_400_000;

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function timed<T>(label: string, fn: () => Promise<T>, runs = 1): Promise<T> {
  let result!: T;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    result = await fn();
    times.push(ms(start));
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`  ${label.padEnd(58)} ${median.toFixed(1).padStart(9)} ms${runs > 1 ? ` (median of ${runs})` : ''}`);
  return result;
}

/** One item's metadata as the store writes it (no fsync here: this measures reading). */
function item(i: number, now: number): QuarantineMetadata {
  const at = now - Math.floor((i / ITEMS) * 30 * DAY);
  const id = ulid(at);
  const from = i % 7 === 0 ? `mallory${i % 500}@bad.test` : `partner${i % 3000}@partner.test`;
  const rcpt = [`user${i % 800}@internal.test`];
  return {
    id,
    receivedAt: new Date(at).toISOString(),
    client: { address: '192.0.2.1', helo: 'mx.partner.test' },
    envelope: { mailFrom: from, mailLine: `MAIL FROM:<${from}>`, rcptTo: rcpt, rcptLines: rcpt.map((r) => `RCPT TO:<${r}>`) },
    size: 48_000,
    sha256: '0'.repeat(64),
    headers: { subject: `Invoice ${i}`, from, messageId: `<${i}@partner.test>` },
    findings: [{ symbol: SYMBOLS[i % SYMBOLS.length], score: 10, part: 'invoice.zip > invoice.docm > word/vbaProject.bin', detail: 'AutoOpen calls Shell' }],
    verdict: { action: 'quarantine', score: 10, reason: SYMBOLS[i % SYMBOLS.length] },
    policyVersion: 'bench',
    state: i % 10 === 0 ? 'released' : 'held',
    history: [{ at: new Date(at).toISOString(), event: 'quarantined', by: 'gateway', host: 'bench' }],
  };
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(tmpdir(), 'mailmoat-bench-console-'));
  const dir = path.join(root, 'quarantine');
  try {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    const now = Date.now();
    for (let i = 0; i < ITEMS; i++) {
      const meta = item(i, now);
      writeFileSync(path.join(dir, `${meta.id}.json`), JSON.stringify(meta, null, 2) + '\n');
      writeFileSync(path.join(dir, `${meta.id}.eml`), 'Subject: x\r\n\r\nx\r\n');
    }
    const store = new QuarantineStore(dir);
    console.log(`quarantine of ${ITEMS} items (${2 * ITEMS} files) in one directory`);

    console.log('the CLI way (every ID.json read, then filtered):');
    await timed('store.list() + filter held & OFFICE_MACRO', async () => {
      const { items } = await store.list();
      return items.filter((m) => matches(m, { states: ['held'], symbols: ['OFFICE_MACRO'] })).length;
    });

    console.log('the catalog (src/quarantine/catalog.ts):');
    const catalog = new QuarantineCatalog(store);
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    await timed('cold: directory listing only (unfiltered page, no summaries)', () => catalog.page({}, { limit: 50 }));
    await timed('cold: read every summary (warm(), done once at start-up)', () => catalog.warm());
    global.gc?.();
    console.log(`  ${'heap held by the catalog'.padEnd(58)} ${((process.memoryUsage().heapUsed - heapBefore) / 1e6).toFixed(0).padStart(9)} MB`);
    await timed('warm: newest page, held', () => catalog.page({ states: ['held'] }, { limit: 50 }), 9);
    await timed('warm: newest page, held, symbol OFFICE_MACRO', () => catalog.page({ states: ['held'], symbols: ['OFFICE_MACRO'] }, { limit: 50 }), 9);
    await timed('warm: newest page, sender @bad.test', () => catalog.page({ sender: '@bad.test' }, { limit: 50 }), 9);
    await timed('warm: newest page, recipient user7@, since 7 days', () => catalog.page({ recipient: 'user7@', since: now - 7 * DAY }, { limit: 50 }), 9);
    const middle = catalog.allIds()[Math.floor(ITEMS / 2)];
    await timed('warm: a page in the middle (before= cursor), held', () => catalog.page({ states: ['held'] }, { before: middle, limit: 50 }), 9);
    // a change made elsewhere: one item rewritten and a line in the audit log, as release.ts does
    const changed = item(5, now);
    changed.state = 'deleted';
    writeFileSync(path.join(dir, `${changed.id}.json`), JSON.stringify(changed));
    appendFileSync(
      store.auditFile,
      JSON.stringify({ time: new Date().toISOString(), action: 'delete', id: changed.id, operator: 'bench', result: 'deleted' }) + '\n',
    );
    await timed('after a change elsewhere (audit log followed, dir re-listed)', () => catalog.page({ states: ['held'] }, { limit: 50 }));

    console.log('through the console over HTTP (GET /quarantine, page rendered):');
    const web = await startTestConsole(root);
    try {
      const client = new ConsoleClient(web.url);
      await client.signIn('admin');
      await timed('first GET /quarantine (its own catalog, cold)', () => client.get('/quarantine'));
      await timed('GET /quarantine (held, newest 50)', () => client.get('/quarantine'), 9);
      await timed('GET /quarantine?symbol=OFFICE_MACRO&sender=%40partner.test', () => client.get('/quarantine?symbol=OFFICE_MACRO&sender=%40partner.test'), 9);
      await timed('GET /quarantine?state=all&since=24h', () => client.get('/quarantine?state=all&since=24h'), 9);
      await timed('GET / (overview: held count, per-day chart)', () => client.get('/'), 9);
    } finally {
      await web.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
