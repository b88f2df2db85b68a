// Scan budget benchmark (`npm run bench:budget`): the issue 11 §3 attack against a gateway process
// with the default policy (office.timeout 20 s, office.maxPasswordAttempts 20, per message).
//
// The worst message: 30 Agile-encrypted Word documents (100,000 SHA-512 rounds per password, as
// Office writes them), none openable, and 20 "Password:" lines: ~780 KB. Before the budget was per
// message it took 268 s to scan and slowed every other client's mail from 0.3 s to 10.8 s.
//
// Prints: the worst message's time to its reply, alone; then the latency of an ordinary message
// (a short text and a clean .docx) on an idle gateway and while BENCH_WORST (default 50) worst
// messages are being scanned; and how long those took.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient } from '../../src/relay/smtp-client.js';
import { sendData, waitForSmtp } from '../helpers/client.js';
import { freePort } from '../helpers/global.js';
import { buildDocx, buildVbaCfb, buildZip } from '../fixtures/office/container-builders.js';
import { buildAgileEncrypted } from '../fixtures/office/ole-builders.js';
import { emailWith } from '../fixtures/office/emails.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const gatewayMain = path.resolve(here, '../../src/cli/main.js');
const sinkMain = path.resolve(here, 'smtp-server-alone.js');
const WORST = Number(process.env.BENCH_WORST ?? 50);
const ORDINARY = Number(process.env.BENCH_ORDINARY ?? 9);

async function worstMessage(): Promise<Buffer> {
  // each document padded to ~19 KB, as a real one would be; each with its own salts
  const docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
  const padded = Buffer.concat([docm, randomBytes(Math.max(0, 19_000 - docm.length))]);
  const docs = Array.from({ length: 30 }, () => buildAgileEncrypted(padded, 'not-guessable', 100_000));
  const passwords = Array.from({ length: 20 }, (_, i) => `Password: ${2000 + i}`).join('\r\n');
  return emailWith(
    docs.map((content, i) => ({ filename: `invoice${i}.docx`, content })),
    { text: `Invoices attached.\r\n${passwords}\r\n` },
  );
}

async function ordinaryMessage(): Promise<Buffer> {
  const docx = await buildZip([
    { name: '[Content_Types].xml', data: '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>' },
    { name: 'word/document.xml', data: '<w:document><w:body><w:p><w:r><w:t>Minutes</w:t></w:r></w:p></w:body></w:document>' },
  ]);
  return emailWith([{ filename: 'minutes.docx', content: docx }], { subject: 'Minutes', text: 'Minutes of Tuesday attached.' });
}

/** Time from the end of DATA to the final reply, and the reply. */
async function send(port: number, message: Buffer): Promise<{ ms: number; reply: string }> {
  const client = await SmtpClient.connect({ host: '127.0.0.1', port, connectTimeout: 10_000, commandTimeout: 900_000 });
  try {
    await client.ehlo('bench.test');
    await client.command('MAIL FROM:<sender@outside.test>');
    await client.command('RCPT TO:<rcpt@internal.test>');
    const started = performance.now();
    const reply = await sendData(client, message, 900_000);
    return { ms: performance.now() - started, reply: `${reply.code}${/quarantined/.test(reply.lines.join(' ')) ? ' quarantined' : ''}` };
  } finally {
    client.close();
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function ordinaryLatencies(port: number, message: Buffer, count: number, gapMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push((await send(port, message)).ms);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  return out;
}

async function main(): Promise<void> {
  const [worst, ordinary] = await Promise.all([worstMessage(), ordinaryMessage()]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-bench-budget-'));
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(policy, '');
  const sinkPort = await freePort();
  const gatewayPort = await freePort();
  const children: ChildProcess[] = [];
  try {
    children.push(spawn(process.execPath, [sinkMain, String(sinkPort)], { stdio: 'ignore' }));
    await waitForSmtp(sinkPort);
    // every client comes from 127.0.0.1 here: the per-address limit would refuse most of the attack before any scan
    const set = ['limits.maxClientsPerIp=null', `spool.dir=${path.join(dir, 'spool')}`, `quarantine.dir=${path.join(dir, 'quarantine')}`, 'log.level=warn'];
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
        ...set.flatMap((s) => ['--set', s]),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(gateway);
    await waitForSmtp(gatewayPort);
    console.log(`bench:budget: worst message ${(worst.length / 1024).toFixed(0)} KB (30 encrypted documents, 20 passwords), ${os.availableParallelism()} CPUs`);

    await send(gatewayPort, ordinary); // warm the workers
    const alone = await send(gatewayPort, worst);
    console.log(`  worst message alone:             ${seconds(alone.ms)} (${alone.reply})   before the per-message budget: 268 s`);

    const idle = await ordinaryLatencies(gatewayPort, ordinary, ORDINARY, 100);
    console.log(`  ordinary message, idle gateway:  median ${seconds(median(idle))}, max ${seconds(Math.max(...idle))}`);

    const started = performance.now();
    const attack = Promise.all(Array.from({ length: WORST }, () => send(gatewayPort, worst).catch((e: Error) => ({ ms: NaN, reply: e.message }))));
    await new Promise((r) => setTimeout(r, 2000)); // every worst message is in and being scanned
    const loaded = await ordinaryLatencies(gatewayPort, ordinary, ORDINARY, 1000);
    const results = await attack;
    const attackMs = performance.now() - started;
    const replies = results.reduce<Record<string, number>>((acc, r) => ((acc[r.reply] = (acc[r.reply] ?? 0) + 1), acc), {});
    console.log(`  ordinary message beside ${WORST} worst: median ${seconds(median(loaded))}, max ${seconds(Math.max(...loaded))}   before: 0.3 s -> 10.8 s`);
    console.log(
      `  ${WORST} worst messages:               all replied in ${seconds(attackMs)}, each ${seconds(median(results.map((r) => r.ms)))} median; ${JSON.stringify(replies)}`,
    );
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
