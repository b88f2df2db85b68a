// Scan speed: files/s and MB/s over the office corpus (when present), the time to scan a 10 MB
// .docm and a 25 MB message with ten attachments through the inspect stage, and peak memory.
// `npm run bench:scan`. Figures only; nothing here asserts on time.
//
// Where ClamAV's `clamscan` is installed (Debian package clamav), the corpus is also scanned by
// `mailmoat scan` and by `clamscan --alert-macros` with a throwaway signature database (one signature
// that never matches, in a temporary directory: what is measured is ClamAV's engine, its file typing
// and its macro heuristics, not the loading of its real databases), each as its own process, back to
// back, three rounds: wall time and CPU (utime + stime of the child, from /proc), and the medians of
// the per-round Mailmoat/ClamAV ratios.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Spool } from '../../src/message/spool.js';
import { inspect } from '../../src/inspect/index.js';
import { scanAttachment } from '../../src/inspect/office/index.js';
import { policySchema } from '../../src/policy/schema.js';
import { buildDocx, buildVbaCfb } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';
import { build7z, buildTar, gzipMember } from '../fixtures/containers/archives.js';
import { buildRar5 } from '../fixtures/containers/rar.js';
import { buildIso } from '../fixtures/containers/iso.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// the public corpus beside the repository (../shared), or beside the main checkout of a git worktree
const corpus =
  [process.env.MAILMOAT_OFFICE_CORPUS, path.resolve(here, '../../../../shared/corpus/office'), path.resolve(here, '../../../../../shared/corpus/office')].find(
    (dir): dir is string => !!dir && existsSync(dir),
  ) ?? path.resolve(here, '../../../../shared/corpus/office');
const mailmoat = path.resolve(here, '../../src/cli/main.js');
const defaultPolicy = path.resolve(here, '../../../policies/default.yaml');
const ROUNDS = 3;
const policy = policySchema.parse({ spool: { dir: path.join(tmpdir(), 'mailmoat-bench-spool') }, limits: { maxMessageSize: '64MB' } });
let peak = 0;
const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.tsv') ? [] : [path.join(dir, e.name)],
  );
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await fn();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

/** utime + stime of this process's waited-for children so far (/proc/self/stat cutime, cstime), in ms. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100; // USER_HZ: 100 on Linux
}

/** Runs a scanner over the files; wall and CPU time in ms. Exit 0 (clean) and 1 (found) are both fine. */
function timedRun(command: string, args: string[]): Promise<{ wallMs: number; cpuMs: number; found: number }> {
  return new Promise((resolve, reject) => {
    const cpu = childrenCpuMs();
    const begin = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('error', reject);
    child.once('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - begin) / 1e6;
      if (code !== 0 && code !== 1) return reject(new Error(`${path.basename(command)} exited ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`));
      const found = out.split('\n').filter((line) => / FOUND$|: (?:TAG|QUARANTINE|REJECT|DEFER) /.test(line)).length;
      resolve({ wallMs, cpuMs: childrenCpuMs() - cpu, found });
    });
  });
}

function which(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(path.delimiter)]) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** `mailmoat scan` and `clamscan --alert-macros` over the same files, each its own process. */
async function againstClamav(list: string[]): Promise<void> {
  const clamscan = which('clamscan');
  if (!clamscan) {
    console.log('ClamAV row: not run: clamscan not installed (Debian package clamav)');
    return;
  }
  const db = mkdtempSync(path.join(tmpdir(), 'mailmoat-bench-clamav-'));
  try {
    // one signature that matches nothing: clamscan refuses to run without any
    writeFileSync(path.join(db, 'bench.ndb'), `MailmoatBench.Throwaway:0:*:${Buffer.from('mailmoat-bench-never-matches').toString('hex')}\n`);
    const ratios: { wall: number; cpu: number }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const m = await timedRun(process.execPath, [mailmoat, 'scan', '-p', defaultPolicy, ...list]);
      const c = await timedRun(clamscan, ['--alert-macros', '-d', db, '--no-summary', ...list]);
      ratios.push({ wall: m.wallMs / c.wallMs, cpu: m.cpuMs / c.cpuMs });
      console.log(
        `  round ${round}: mailmoat scan ${m.wallMs.toFixed(0)} ms wall, ${m.cpuMs.toFixed(0)} ms CPU, ${m.found} flagged; ` +
          `clamscan --alert-macros ${c.wallMs.toFixed(0)} ms wall, ${c.cpuMs.toFixed(0)} ms CPU, ${c.found} flagged`,
      );
    }
    const wall = median(ratios.map((r) => r.wall));
    console.log(
      `Mailmoat/ClamAV over the corpus (median of ${ROUNDS}): wall ${wall.toFixed(2)}x, CPU ${median(ratios.map((r) => r.cpu)).toFixed(2)}x ` +
        `(target wall <= 1.00x: ${wall <= 1 ? 'met' : 'NOT met'})`,
    );
  } finally {
    rmSync(db, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (existsSync(corpus)) {
    const list = files(corpus);
    const bytes = list.reduce((s, f) => s + statSync(f).size, 0);
    const [, ms] = await time(async () => {
      for (const f of list) await scanAttachment(readFileSync(f), path.basename(f), undefined, []);
    });
    console.log(
      `corpus: ${list.length} files, ${(bytes / 1e6).toFixed(1)} MB in ${ms.toFixed(0)} ms: ${((list.length * 1000) / ms).toFixed(1)} files/s, ${(bytes / 1e3 / ms).toFixed(2)} MB/s`,
    );
    await againstClamav(list);
  } else {
    console.log('corpus: not present, skipped');
  }

  const media = randomBytes(10 * 1024 * 1024);
  const bigDocm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb(), extra: [{ name: 'word/media/image1.bin', data: media, level: 0 }] });
  const [found, docmMs] = await time(() => scanAttachment(bigDocm, 'big.docm', undefined, []));
  console.log(`10 MB .docm (${(bigDocm.length / 1e6).toFixed(1)} MB): ${docmMs.toFixed(0)} ms, findings ${[...new Set(found.map((f) => f.symbol))].join(',')}`);

  // the same document in each container of the later waves (7z, RAR and ISO through 7-Zip in WebAssembly)
  const inside = [{ name: 'big.docm', data: bigDocm }];
  const containers: [string, Buffer][] = [
    ['big.docm.gz', gzipMember(bigDocm, { name: 'big.docm' })],
    ['big.tar.gz', gzipMember(await buildTar(inside))],
    ['big.7z', await build7z(inside, { level: 1 })],
    ['big.rar (RAR5, stored)', buildRar5(inside)],
    ['big.iso', buildIso(inside)],
  ];
  for (const [name, bytes] of containers) {
    const [fs, ms] = await time(() => scanAttachment(bytes, name.split(' ')[0], undefined, []));
    console.log(`${name} (${(bytes.length / 1e6).toFixed(1)} MB): ${ms.toFixed(0)} ms, findings ${[...new Set(fs.map((f) => f.symbol))].join(',')}`);
  }

  const attachments = await Promise.all(
    Array.from({ length: 10 }, async (_, i) => ({
      filename: i % 3 === 0 ? `invoice${i}.docm` : `photo${i}.bin`,
      content:
        i % 3 === 0
          ? await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb(), extra: [{ name: 'word/media/p.bin', data: randomBytes(1.7e6), level: 0 }] })
          : randomBytes(1.7e6),
    })),
  );
  const message = await emailWith(attachments);
  const spool = new Spool(policy.spool.dir, policy.spool.memoryLimit, policy.limits.maxMessageSize);
  await pipeline(Readable.from([message]), spool);
  const before = process.memoryUsage().rss;
  const [result, msgMs] = await time(() =>
    inspect(spool, { id: 'bench', envelope: { mailFrom: 'a@b.test', rcptTo: ['c@d.test'] }, client: { address: '127.0.0.1', helo: 'bench' } }, policy),
  );
  await spool.dispose();
  console.log(
    `${(message.length / 1e6).toFixed(1)} MB message, 10 attachments: ${msgMs.toFixed(0)} ms, ${result.findings.length} findings; RSS ${(before / 1e6).toFixed(0)} MB before`,
  );
  clearInterval(sample);
  console.log(`peak RSS ${(peak / 1e6).toFixed(0)} MB`);
}

await main();
