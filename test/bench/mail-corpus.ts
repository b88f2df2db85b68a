// Reply-chain spoofing on the mail corpus (../shared/corpus/mail, MANIFEST.tsv): the share of ham
// and phish the spoof checks flag (SPOOF_SUSPECT: tag, SPOOF_HIJACK: quarantine), and every flagged
// ham message with its findings. `npm run eval:mail`. Not part of `npm test`.
// The envelope sender is the message's Return-Path (as `mailmoat scan` takes it), recipients its
// Delivered-To/To, the client the topmost Received line with a public address names (else an outside
// test address). DNS is offline (every name NXDOMAIN: the corpus
// is years old, its DKIM keys and SPF records are gone). Messages run in MANIFEST order through one
// in-memory thread memory that learns from each relayed message, as the gateway would.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Spool } from '../../src/message/spool.js';
import { inspect } from '../../src/inspect/index.js';
import { parseMailboxes } from '../../src/inspect/spoof/names.js';
import { learnFromRelayed } from '../../src/inspect/spoof/index.js';
import { policySchema } from '../../src/policy/schema.js';
import type { StateBackend } from '../../src/state/index.js';
import { threadMemoryFor } from '../../src/state/thread-memory.js';
import { decide } from '../../src/verdict.js';
import { nxdomainResolver } from '../fixtures/mail/zone.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const corpus = process.env.MAILMOAT_MAIL_CORPUS ?? path.resolve(here, '../../../../shared/corpus/mail');
const policy = policySchema.parse({ spool: { dir: path.join(tmpdir(), 'mailmoat-eval-spool') } });
const state: StateBackend = { kind: 'memory' };
const verbose = process.argv.includes('--verbose');

function headerValue(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.search(/\r?\n\r?\n/) >>> 0);
  const m = new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return m?.[1]?.replace(/\r?\n[ \t]+/g, ' ').trim();
}

/**
 * The client that handed the message to the receiving organisation, as its topmost Received line with
 * a public address says (so the sender-infrastructure memory sees each sender's real networks);
 * undefined when the trace has none.
 */
function receivedFrom(raw: string): string | undefined {
  const head = raw.slice(0, raw.search(/\r?\n\r?\n/) >>> 0);
  for (const m of head.matchAll(/^Received:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/gim)) {
    const ip = /\[(?:IPv6:)?([0-9a-f:.]+)\]/i.exec(m[1])?.[1];
    if (ip && net.isIP(ip) && !/^(?:10\.|127\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|::1$|fe80:|fc|fd)/i.test(ip)) return ip;
  }
  return undefined;
}

async function main(): Promise<void> {
  const rows = readFileSync(path.join(corpus, 'MANIFEST.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'));
  const stats = new Map<string, { total: number; tag: number; quarantine: number; symbols: Map<string, number> }>();
  const flaggedHam: string[] = [];
  const started = process.hrtime.bigint();
  for (const [file, label] of rows as [string, string][]) {
    const bytes = readFileSync(path.join(corpus, file));
    const raw = bytes.toString('latin1');
    const mailFrom = parseMailboxes(headerValue(raw, 'return-path'))[0]?.address ?? '';
    const rcpt = parseMailboxes(headerValue(raw, 'delivered-to') ?? headerValue(raw, 'to'))[0]?.address ?? 'someone@example.org';
    const envelope = { mailFrom, rcptTo: [rcpt] };
    const client = { address: receivedFrom(raw) ?? '192.0.2.25', helo: 'mail.example.net' };
    const spool = new Spool(policy.spool.dir, policy.spool.memoryLimit, policy.limits.maxMessageSize);
    await pipeline(Readable.from([bytes]), spool);
    const { message, findings, spoofObservation } = await inspect(spool, { id: file, envelope, client }, policy, { state, resolver: nxdomainResolver });
    await spool.dispose();
    const verdict = decide(findings, policy, envelope);
    const spoof = verdict.findings.filter((f) => /^(SPOOF_|AUTH_|STATE_)/.test(f.symbol));
    const s = stats.get(label) ?? { total: 0, tag: 0, quarantine: 0, symbols: new Map() };
    stats.set(label, s);
    s.total++;
    for (const f of spoof) s.symbols.set(f.symbol, (s.symbols.get(f.symbol) ?? 0) + 1);
    const hijack = spoof.some((f) => f.symbol === 'SPOOF_HIJACK');
    const suspect = spoof.some((f) => f.symbol === 'SPOOF_SUSPECT');
    if (hijack) s.quarantine++;
    if (hijack || suspect) s.tag++;
    if ((hijack || suspect) && label === 'ham') {
      flaggedHam.push(
        `  ${file}: ${spoof
          .filter((f) => f.score !== 0 || /HIJACK|SUSPECT/.test(f.symbol))
          .map((f) => `${f.symbol}(${f.score}) ${f.detail ?? ''}`)
          .join(' | ')}`,
      );
    }
    if (verbose && (hijack || suspect)) console.log(`${label} ${file}: ${spoof.map((f) => `${f.symbol} ${f.detail ?? ''}`).join(' | ')}`);
    if (verdict.action === 'relay') {
      const update = learnFromRelayed(
        { headers: message.headers, envelope, client, policy, ...(spoofObservation ? { observation: spoofObservation } : {}) },
        verdict.findings,
      );
      if (update) await threadMemoryFor(state).update(update, policy.spoof.memoryTtl);
    }
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const pct = (n: number, d: number) => `${((100 * n) / Math.max(d, 1)).toFixed(2)}%`;
  for (const [label, s] of stats) {
    console.log(
      `${label}: ${s.total} messages; flagged (tag or quarantine) ${s.tag} = ${pct(s.tag, s.total)}; quarantine ${s.quarantine} = ${pct(s.quarantine, s.total)}`,
    );
    const top = [...s.symbols].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
    console.log(`  symbols: ${top.join(', ') || 'none'}`);
  }
  console.log(`flagged ham (${flaggedHam.length}):`);
  for (const line of flaggedHam) console.log(line);
  console.log(`${rows.length} messages through inspect in ${ms.toFixed(0)} ms (${((rows.length * 1000) / ms).toFixed(0)} msg/s)`);
}

await main();
