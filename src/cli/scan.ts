// `mailmoat scan PATH...`: the gateway's engine and policy on files (raw attachments or .eml
// messages; directories recursively). One line per file; --json for machines. Exit status as
// clamscan: 0 nothing found, 1 findings, 2 errors.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { Spool } from '../message/spool.js';
import { officeLimits } from '../inspect/attachments.js';
import { scanAttachment, sniff } from '../inspect/office/index.js';
import { messageId } from '../observe/id.js';
import { formatProblem, loadPolicy, PolicyError, type LoadedPolicy } from '../policy/load.js';
import { decide, type Verdict } from '../verdict.js';
import { defaultPolicyFile } from './paths.js';
import { collect } from './policy.js';

interface ScanOptions {
  policy: string;
  set: string[];
  json?: boolean;
  verbose?: boolean;
  envelopeFrom?: string;
  clientIp: string;
  helo: string;
}

/** Where a scanned message came from, as the gateway would have seen it. */
interface Origin {
  envelopeFrom?: string;
  clientIp: string;
  helo: string;
}

export interface FileResult {
  path: string;
  kind: 'message' | 'file';
  verdict?: Verdict;
  error?: string;
}

export function registerScan(program: Command): void {
  program
    .command('scan')
    .description("scan files (attachments or .eml messages, directories recursively) with the gateway's engine and policy")
    .argument('<path...>', 'files or directories')
    .option('-p, --policy <file>', 'policy file', defaultPolicyFile)
    .option('-o, --set <key.path=value>', 'override a policy option (repeatable)', collect, [])
    .option('--json', 'one JSON object per file per line')
    .option('-v, --verbose', 'print each finding with its place in the file and its detail')
    .option('--envelope-from <address>', "a message's envelope sender (default: its Return-Path header)")
    .option('--client-ip <ip>', 'the client address the gateway would have seen (for SPF and internal/external)', '127.0.0.1')
    .option('--helo <name>', 'the HELO name the gateway would have seen', 'localhost')
    .addHelpText('after', '\nExit status: 0 nothing found, 1 findings, 2 errors (as clamscan).')
    .action(async (paths: string[], opts: ScanOptions) => {
      let loaded: LoadedPolicy;
      try {
        loaded = loadPolicy(opts.policy, opts.set);
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        for (const problem of err.problems) process.stderr.write(formatProblem(problem) + '\n');
        process.exitCode = 2;
        return;
      }
      let found = false;
      let failed = false;
      const origin: Origin = { envelopeFrom: opts.envelopeFrom, clientIp: opts.clientIp, helo: opts.helo };
      for (const file of await expand(paths)) {
        const result = await scanPath(file, loaded, origin);
        if (result.error) failed = true;
        else if (result.verdict!.findings.some((f) => !f.excepted)) found = true;
        process.stdout.write((opts.json ? JSON.stringify(result) : formatResult(result, opts.verbose)) + '\n');
      }
      process.exitCode = failed ? 2 : found ? 1 : 0;
    });
}

/** Files under the given paths, directories walked recursively, in a stable order. */
async function expand(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    let info;
    try {
      info = await stat(p);
    } catch {
      files.push(p); // reported as an error by scanPath
      continue;
    }
    if (!info.isDirectory()) {
      files.push(p);
      continue;
    }
    const entries = (await readdir(p, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    files.push(...(await expand(entries.map((e) => path.join(p, e.name)))));
  }
  return files;
}

// one thread memory for the whole run, as one gateway would have (empty at the start). The message
// pipeline (every analyzer, the authentication library, the logger) is loaded with the first message:
// a run over attachments only starts in a third of the time without it.
let messagePipeline: Promise<{ judge: typeof import('../pipeline.js').judge; services: import('../pipeline.js').Services }> | undefined;
function loadMessagePipeline() {
  messagePipeline ??= Promise.all([import('../pipeline.js'), import('../observe/log.js')]).then(([{ judge }, { createLogger }]) => ({
    judge,
    services: { state: { kind: 'memory' } as const, log: createLogger('error', process.stderr) },
  }));
  return messagePipeline;
}

export async function scanPath(file: string, loaded: LoadedPolicy, origin: Origin): Promise<FileResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    return { path: file, kind: 'file', error: (err as Error).message };
  }
  const { policy } = loaded;
  if (!looksLikeMessage(bytes, file)) {
    const findings = await scanAttachment(bytes, path.basename(file), undefined, [], officeLimits(policy));
    return { path: file, kind: 'file', verdict: decide(findings, policy) };
  }
  const { judge, services } = await loadMessagePipeline();
  const spool = new Spool(policy.spool.dir, policy.spool.memoryLimit, Number.MAX_SAFE_INTEGER);
  try {
    await pipeline(Readable.from([bytes]), spool);
    const mailFrom = origin.envelopeFrom ?? returnPath(bytes);
    const verdict = await judge(
      spool,
      {
        id: messageId(),
        receivedAt: new Date(),
        policy,
        policyVersion: loaded.version,
        client: { address: origin.clientIp, helo: origin.helo },
        envelope: { mailFrom, mailLine: `MAIL FROM:<${mailFrom}>`, rcptTo: [], rcptLines: [] },
      },
      services,
    );
    return { path: file, kind: 'message', verdict };
  } finally {
    await spool.dispose();
  }
}

/** An RFC 5322 message (by its .eml name, by its header block, or header-like lines where no document format matched). */
function looksLikeMessage(bytes: Buffer, file: string): boolean {
  if (/\.(eml|msg822)$/i.test(file)) return true;
  const kind = sniff(bytes);
  if (kind === 'message') return true;
  if (kind !== 'other') return false;
  const head = bytes.subarray(0, 4096).toString('latin1');
  return /^(?:From [^\n]*\n)?[!-9;-~]+:[^\n]*\r?\n/.test(head) && /\r?\n\r?\n/.test(head);
}

/** The envelope sender of an archived message: its Return-Path header. */
function returnPath(bytes: Buffer): string {
  const head = bytes.subarray(0, 64 * 1024).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const match = /^Return-Path:\s*<([^>]*)>/im.exec(end === -1 ? head : head.slice(0, end));
  return match?.[1] ?? '';
}

export function formatResult(result: FileResult, verbose = false): string {
  if (result.error) return `${result.path}: ERROR ${result.error}`;
  const verdict = result.verdict!;
  const counted = verdict.findings.filter((f) => !f.excepted);
  if (!counted.length) return `${result.path}: OK`;
  const symbols = [...new Set(counted.map((f) => f.symbol))].join(' ');
  const line = `${result.path}: ${verdict.action.toUpperCase()} score=${verdict.score} ${symbols}`;
  if (!verbose) return line;
  const details = verdict.findings.map(
    (f) =>
      `  ${f.symbol} (${f.score})${f.excepted ? ` excepted: ${f.excepted}` : ''}${f.part ? ` at ${f.part}` : ''}${f.detail ? `: ${f.detail}` : ''}${f.sha256 ? ` sha256=${f.sha256}` : ''}`,
  );
  return [line, ...details].join('\n');
}
