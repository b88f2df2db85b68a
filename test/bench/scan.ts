// Scan speed: files/s and MB/s over the office corpus (when present), the time to scan a 10 MB
// .docm and a 25 MB message with ten attachments through the inspect stage, and peak memory.
// `npm run bench:scan`. Figures only; nothing here asserts on time.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
const corpus = path.resolve(here, '../../../../shared/corpus/office');
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
