// Memory benchmark (`npm run bench:memory`): BENCH_CLIENTS (default 50) clients send a ~25 MB message
// each, all at once, through a gateway process with the default policy (every analyzer on) to a
// discarding downstream. Prints the gateway's peak RSS (VmHWM), its RSS once the run is over and the
// gateway idle, and how long the run took. Target (issue 11): peak under 600 MB, back under 250 MB.
// BENCH_SET passes policy overrides (e.g. limits.memoryBudget=128MB); the gateway gets the bench's
// environment (MALLOC_ARENA_MAX and the like, when set, are printed).
//
// All clients connect from 127.0.0.1, which the default policy lists in xforwardHosts: such an
// address is a proxying MTA and not subject to limits.maxClientsPerIp (20), so none is refused; the
// replies are printed, so a refusal would show.
//
// The message: a text part, a ~10 MB binary attachment, and a ~8 MB .docx-like package with a large
// media part and a small document: what a mail client sends, base64-encoded to ~24.6 MB on the wire.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient, type SmtpReply } from '../../src/relay/smtp-client.js';
import { sendData, waitForSmtp } from '../helpers/client.js';
import { freePort } from '../helpers/global.js';
import { buildZip } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const gatewayMain = path.resolve(here, '../../src/cli/main.js');
const sinkMain = path.resolve(here, 'smtp-server-alone.js');
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 15_000);

function status(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;

async function buildMessage(): Promise<Buffer> {
  const docx = await buildZip([
    { name: '[Content_Types].xml', data: '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>' },
    { name: 'word/document.xml', data: '<w:document/>' },
    { name: 'word/media/image1.png', data: randomBytes(8 * 1024 * 1024), level: 0 },
  ]);
  return emailWith([
    { filename: 'scan.bin', content: randomBytes(10 * 1024 * 1024), contentType: 'application/octet-stream' },
    { filename: 'report.docx', content: docx, contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' },
  ]);
}

/** The reply that ended the transaction, without the queue id or message id that differ between clients. */
async function send(port: number, message: Buffer): Promise<string> {
  const client = await SmtpClient.connect({ host: '127.0.0.1', port, connectTimeout: 10_000, commandTimeout: 600_000 });
  const shown = (step: string, r: SmtpReply) =>
    `${step} ${r.code} ${r.lines.join(' ')}`.replace(/(queued as|quarantined as) \S+/, '$1 …').replace(/ \[[0-9A-Z]{26}\]/, '');
  try {
    await client.ehlo('bench.test');
    const mail = await client.command('MAIL FROM:<sender@internal.test>');
    if (mail.code !== 250) return shown('MAIL', mail);
    const rcpt = await client.command('RCPT TO:<rcpt@outside.test>');
    if (rcpt.code !== 250) return shown('RCPT', rcpt);
    return shown('DATA', await sendData(client, message));
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const message = await buildMessage();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-bench-memory-'));
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(policy, '');
  const sinkPort = await freePort();
  const gatewayPort = await freePort();
  const metricsPort = await freePort();
  const children: ChildProcess[] = [];
  try {
    // the downstream as Postfix's after-filter smtpd: 300 s of silence allowed mid-transaction (a message
    // waiting for the memory budget, like one still being uploaded, keeps its downstream transaction idle)
    children.push(spawn(process.execPath, [sinkMain, String(sinkPort), '300'], { stdio: 'ignore' }));
    await waitForSmtp(sinkPort);
    const gateway = spawn(
      process.execPath,
      [
        gatewayMain,
        'serve',
        '--policy',
        policy,
        '--listen',
        `127.0.0.1:${gatewayPort}`,
        '--downstream',
        `127.0.0.1:${sinkPort}`,
        '--set',
        `spool.dir=${path.join(dir, 'spool')}`,
        '--set',
        `quarantine.dir=${path.join(dir, 'quarantine')}`,
        '--set',
        'log.level=warn',
        '--set',
        `metrics.listen={host: 127.0.0.1, port: ${metricsPort}}`,
        // BENCH_SET="limits.memoryBudget=128MB": the same run with policy changes
        ...(process.env.BENCH_SET ?? '')
          .split(/\s+/)
          .filter(Boolean)
          .flatMap((o) => ['--set', o]),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(gateway);
    await waitForSmtp(gatewayPort);
    const idle = status(gateway.pid!).rss;
    const malloc = Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_'));
    console.log(`bench:memory: ${CLIENTS} clients x ${mb(message.length)} message, gateway pid ${gateway.pid}, RSS idle ${mb(idle)}`);
    console.log(
      `  policy overrides:   ${process.env.BENCH_SET || 'none'}; environment: ${malloc.map(([k, v]) => `${k}=${v}`).join(' ') || 'no MALLOC_* tuning'}`,
    );
    let peakSeen = 0;
    const sampler = setInterval(() => (peakSeen = Math.max(peakSeen, status(gateway.pid!).rss)), 50);
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: CLIENTS }, () => send(gatewayPort, message).catch((e: Error) => e.message)));
    const seconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    const counts = replies.reduce<Record<string, number>>((acc, r) => ((acc[r] = (acc[r] ?? 0) + 1), acc), {});
    const { hwm, rss: atEnd } = status(gateway.pid!);
    const waited = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      .then((r) => r.text())
      .then((text) => /^mailmoat_memory_budget_waits_total\{front="smtp"\} (\d+)/m.exec(text)?.[1] ?? '0');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const settled = status(gateway.pid!).rss;
    console.log(`  replies:`);
    for (const [reply, n] of Object.entries(counts)) console.log(`    ${String(n).padStart(4)} x ${reply}`);
    console.log(`  waited for memory:  ${waited} of ${CLIENTS} messages (limits.memoryBudget)`);
    console.log(`  run:                ${seconds.toFixed(1)} s (${((CLIENTS * message.length) / 1024 / 1024 / seconds).toFixed(0)} MB/s)`);
    console.log(`  peak RSS (VmHWM):   ${mb(Math.max(hwm, peakSeen))}   target < 600 MB`);
    console.log(`  RSS at the end:     ${mb(atEnd)}`);
    console.log(`  RSS ${SETTLE_MS / 1000} s later:    ${mb(settled)}   target < 250 MB`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
