// `mailmoat demo`: the gateway as `serve` runs it (policies/default.yaml, the embedded in-memory state,
// no Redis), in front of a stand-in MTA, on free loopback ports, with a temporary spool and quarantine.
// It sends the sample mail through real SMTP, releases a held message through the quarantine's own
// release code, prints what happened at each step and stays up for a look around until Ctrl-C.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { defaultPolicyFile } from '../cli/paths.js';
import { Gateway } from '../gateway/server.js';
import { closeScanPool } from '../inspect/office/pool.js';
import { createLogger, type Logger } from '../observe/log.js';
import { loadPolicy, type LoadedPolicy } from '../policy/load.js';
import { release } from '../quarantine/release.js';
import { QuarantineStore } from '../quarantine/store.js';
import { formatReply } from '../relay/smtp-client.js';
import type { StateBackend } from '../state/index.js';
import { startDemoConsole, type DemoConsole } from './console.js';
import { lastReply, Report, replyText, verdictText, type MessageLine } from './report.js';
import { cleanNote, hijackedReply, macroInvoice, ORG, quoteRequest, wordFromInfectedPc, type Sample } from './samples.js';
import { StandInMta } from './stand-in-mta.js';
import { transaction, type TransactionReplies } from './submit.js';

/** The infected PC's Word burst: this many Office messages in 10 minutes pass, the next is deferred. */
const BURST_LIMIT = 3;

export interface DemoOptions {
  /** stop after the summary (tests, CI) instead of running until Ctrl-C */
  exit: boolean;
  /** how to name the CLI in the hints: `mailmoat` or `node dist/src/cli/main.js` */
  cli: string;
  out?: NodeJS.WritableStream;
}

/** The gateway's JSON log: into a file the user can read, and the `message` lines kept for the summary. */
class DemoLog {
  readonly messages: MessageLine[] = [];
  readonly logger: Logger;
  private readonly file: WriteStream;
  private listeners: ((line: MessageLine) => void)[] = [];

  constructor(readonly path: string) {
    this.file = createWriteStream(path);
    const destination = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.file.write(chunk);
        for (const text of chunk.toString().split('\n').filter(Boolean)) {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (line.event !== 'message') continue;
          this.messages.push(line as unknown as MessageLine);
          for (const listener of this.listeners) listener(line as unknown as MessageLine);
        }
        done();
      },
    });
    this.logger = createLogger('info', destination);
  }

  onMessage(listener: (line: MessageLine) => void): void {
    this.listeners.push(listener);
  }

  /** The `message` line after the first `seen`: logged just after the client's reply, so it may take a moment. */
  async messageAfter(seen: number): Promise<MessageLine | undefined> {
    for (let i = 0; i < 100 && this.messages.length <= seen; i++) await new Promise((r) => setTimeout(r, 20));
    return this.messages[seen];
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.file.end(() => resolve()));
  }
}

interface Running {
  dir: string;
  loaded: LoadedPolicy;
  state: StateBackend;
  mta: StandInMta;
  gateway: Gateway;
  gatewayPort: number;
  mtaPort: number;
  log: DemoLog;
  store: QuarantineStore;
  console?: DemoConsole;
}

async function start(): Promise<Running> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailmoat-demo-'));
  const mta = new StandInMta();
  let log: DemoLog | undefined;
  try {
    const mtaPort = (await mta.listen()).port;
    const loaded = loadPolicy(defaultPolicyFile, [
      `downstream.port=${mtaPort}`,
      'downstream.starttls=off',
      `spool.dir=${JSON.stringify(path.join(dir, 'spool'))}`,
      `quarantine.dir=${JSON.stringify(path.join(dir, 'quarantine'))}`,
      'state.backend=memory',
      `network.internalDomains=[${ORG}]`,
      // the demo's domains are made up: SPF, DKIM and DMARC lookups would only wait for DNS
      'spoof.authentication=false',
      `rate.thresholds=[{metric: office, window: 10m, limit: ${BURST_LIMIT}, action: defer}]`,
    ]);
    log = new DemoLog(path.join(dir, 'gateway.log'));
    const state: StateBackend = { kind: 'memory' };
    const gateway = new Gateway(loaded, log.logger, { state, log: log.logger });
    const gatewayPort = (await gateway.listen('127.0.0.1', 0)).port;
    const store = new QuarantineStore(loaded.policy.quarantine.dir);
    return { dir, loaded, state, mta, gateway, gatewayPort, mtaPort, log, store };
  } catch (err) {
    // nothing of a demo that could not start stays behind
    await mta.close().catch(() => undefined);
    await log?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function stop(run: Running): Promise<void> {
  await run.console?.close();
  await run.gateway.drain();
  await run.mta.close();
  await closeScanPool();
  await run.log.close();
  await rm(run.dir, { recursive: true, force: true });
}

interface Sent {
  sample: Sample;
  replies: TransactionReplies;
  line: MessageLine | undefined;
}

async function send(run: Running, sample: Sample): Promise<Sent> {
  const seen = run.log.messages.length;
  const replies = await transaction(
    run.gatewayPort,
    `MAIL FROM:<${sample.mailFrom}>`,
    sample.rcptTo.map((r) => `RCPT TO:<${r}>`),
    sample.bytes,
    'demo-client.example.com',
  );
  return { sample, replies, line: await run.log.messageAfter(seen) };
}

function showSent(report: Report, sent: Sent): void {
  report.field('sent', `${sent.sample.mailFrom} -> ${sent.sample.rcptTo.join(', ')}: ${sent.sample.label}`);
  report.field('reply', replyText(sent.replies));
  const [head, ...findings] = verdictText(sent.line);
  report.field('verdict', head);
  for (const finding of findings) report.field('', finding);
}

const deliveredCount = (run: Running, messageId: string) => run.mta.delivered.filter((d) => d.messageId === messageId).length;
const messageIdOf = (sample: Sample) => /^Message-ID: (<[^>]+>)/im.exec(sample.bytes.toString('latin1'))?.[1] ?? '';
const quarantinedId = (sent: Sent) => /quarantined as ([0-9A-Z]{26})/.exec(replyText(sent.replies))?.[1];

async function steps(run: Running, report: Report): Promise<void> {
  report.step('A clean message is relayed');
  const clean = await send(run, await cleanNote());
  showSent(report, clean);
  const cleanCopies = run.mta.delivered.filter((d) => d.messageId === messageIdOf(clean.sample));
  report.result(
    lastReply(clean.replies).code === 250 && clean.line?.verdict === 'relay' && cleanCopies.length === 1 && cleanCopies[0].bytes.equals(clean.sample.bytes),
    'relayed: the stand-in MTA has it, byte for byte as sent',
    `expected 250 and one copy at the stand-in MTA, as sent (it has ${cleanCopies.length})`,
  );

  report.step('A Word document with an auto-run macro is quarantined');
  const invoice = await send(run, await macroInvoice());
  showSent(report, invoice);
  const invoiceId = quarantinedId(invoice);
  const macroFound = invoice.line?.symbols.some((s) => s.startsWith('OFFICE_MACRO')) ?? false;
  report.result(
    Boolean(invoiceId) && macroFound && deliveredCount(run, messageIdOf(invoice.sample)) === 0,
    `held in the quarantine as ${invoiceId}; the stand-in MTA did not get it`,
    'expected 250 "quarantined as" with an OFFICE_MACRO finding, and nothing delivered',
  );

  report.step('A hijacked reply is quarantined');
  const outbound = await send(run, await quoteRequest());
  showSent(report, outbound);
  const hijack = await send(run, await hijackedReply());
  showSent(report, hijack);
  const hijackId = quarantinedId(hijack);
  report.result(
    lastReply(outbound.replies).code === 250 && Boolean(hijackId) && (hijack.line?.symbols.includes('SPOOF_HIJACK') ?? false),
    `the quote request relayed; the hijacked reply held in the quarantine as ${hijackId}`,
    'expected the quote request relayed and the reply quarantined with SPOOF_HIJACK',
  );

  report.step(`An internal PC's burst of Word mail is deferred (the demo's limit: ${BURST_LIMIT} Office messages per sender in 10 minutes)`);
  const burst: Sent[] = [];
  for (let n = 1; n <= BURST_LIMIT + 1; n++) {
    const sent = await send(run, await wordFromInfectedPc(n));
    burst.push(sent);
    report.field(n === 1 ? 'sent' : '', `${sent.sample.mailFrom} -> ${sent.sample.rcptTo.join(', ')}: ${sent.sample.label}`);
    report.field(
      '',
      `  ${replyText(sent.replies)}  [${sent.line ? `${sent.line.verdict}${sent.line.symbols.length ? ' ' + sent.line.symbols.join(',') : ''}` : '?'}]`,
    );
  }
  const last = burst.at(-1)!;
  const passed = burst.slice(0, -1).every((s) => lastReply(s.replies).code === 250);
  report.result(
    passed && /^451 4\.7\.1/.test(replyText(last.replies)) && last.line?.verdict === 'defer',
    `the first ${BURST_LIMIT} relayed, message ${BURST_LIMIT + 1} deferred with 451 4.7.1 (the PC's mail client keeps it and retries later)`,
    `expected ${BURST_LIMIT} relayed and the next deferred with 451 4.7.1`,
  );

  report.step('The admin releases the held invoice (the code behind `mailmoat quarantine release`)');
  if (!invoiceId) {
    report.result(false, '', 'nothing to release: the invoice was not quarantined');
    return;
  }
  const released = await release(run.store, invoiceId, run.loaded.policy, { operator: 'demo' });
  report.field('release', `${invoiceId} via ${released.downstream}`);
  for (const r of released.recipients) report.field('reply', `${r.rcpt}: ${formatReply(r.reply)}`);
  if (released.reply) report.field('reply', `final: ${formatReply(released.reply)}`);
  const meta = await run.store.get(invoiceId);
  const copies = deliveredCount(run, messageIdOf(invoice.sample));
  report.result(
    released.status === 'released' && meta.state === 'released' && copies === 1,
    `delivered once to the stand-in MTA; the item is now "${meta.state}" (its history and audit.log say by whom)`,
    `release ${released.status}: ${released.reason}; the stand-in MTA has ${copies} copies`,
  );
}

/** Runs the demo; resolves with the exit status once it ends (at once with `exit`, else on SIGINT/SIGTERM). */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const report = new Report(out);
  const run = await start();
  try {
    report.line('Mailmoat demo: the gateway in front of a stand-in MTA, with sample mail');
    report.line();
    report.field('gateway', `127.0.0.1:${run.gatewayPort} (policies/default.yaml; demo settings: internal domain ${ORG}, the Word-burst limit below)`);
    report.field('MTA', `127.0.0.1:${run.mtaPort} (a stand-in that keeps what it receives in memory)`);
    report.field('state', 'embedded, in memory (no Redis)');
    report.field('files', `${run.dir} (spool, quarantine, gateway.log)`);

    await steps(run, report);

    report.line();
    const failed = report.failures;
    report.line(failed ? `${failed} of ${report.stepCount} steps did not go as expected (✘ above).` : `All ${report.stepCount} steps went as expected.`);
    const held = (await run.store.list()).items.filter((m) => m.state === 'held').length;
    report.line(`The stand-in MTA received ${run.mta.delivered.length} messages; the quarantine holds ${held}.`);
    run.mta.delivered.forEach((d, i) => report.field(`STANDIN${i + 1}`, `${d.messageId ?? '(no Message-ID)'} ${d.mailFrom} -> ${d.rcptTo.join(', ')}`));
  } catch (err) {
    await stop(run);
    throw err;
  }
  try {
    run.console = await startDemoConsole({ policy: run.loaded.policy, state: run.state, dir: run.dir, log: run.log.logger });
  } catch (err) {
    await stop(run);
    throw err;
  }
  report.line();
  report.field('console', `${run.console.url}  (user ${run.console.login.user}, password ${run.console.login.password})`);
  const status = report.failures ? 1 : 0;
  if (options.exit) {
    await stop(run);
    return status;
  }
  const q = `--set quarantine.dir=${path.join(run.dir, 'quarantine')}`;
  report.line();
  report.line('The gateway keeps running until Ctrl-C. Meanwhile:');
  report.line(`   swaks --server 127.0.0.1:${run.gatewayPort} --from you@example.com --to someone@example.org`);
  report.line(`   ${options.cli} quarantine list ${q}`);
  report.line(`   ${options.cli} quarantine show ID ${q}`);
  report.line(`   the gateway's log: ${run.log.path}`);
  report.line(`Ctrl-C stops it and removes ${run.dir}.`);
  report.line();
  run.log.onMessage((line) =>
    report.line(`message ${line.id} ${line.from} -> ${line.rcpt.join(', ')}: ${line.verdict}${line.symbols.length ? ` (${line.symbols.join(', ')})` : ''}`),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await stop(run);
  report.line(`stopped; ${run.dir} removed`);
  return status;
}
