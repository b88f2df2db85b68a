// Replays one protected organisation's generated mail through a real gateway: the in-process
// Gateway on a loopback port with the default policy and the organisation's network section, the
// embedded in-memory state, a real downstream (test/helpers/sink.ts), one SMTP connection per
// message in date order. XFORWARD gives each message its real client address and HELO (the
// internal MTA for outbound mail, the sender's infrastructure for inbound), as Postfix in front
// would. DNS: the servers given (a local DNS server serving the corpus zone), or an address where
// no DNS server listens (--no-dns). The verdict of each message comes from the gateway's own
// "message" log line.
import { verifiedClientName } from '../../src/message/parsed.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Gateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/observe/log.js';
import { loadPolicy } from '../../src/policy/load.js';
import { QuarantineStore } from '../../src/quarantine/store.js';
import { encodeXtext } from '../../src/relay/xtext.js';
import { SmtpClient } from '../../src/relay/smtp-client.js';
import type { GeneratedMessage, OrgSetup } from '../fixtures/threads/corpus.js';
import { defaultPolicyFile, repoRoot } from './gateway.js';
import { startSink } from './sink.js';

export interface ReplayedMessage {
  message: GeneratedMessage;
  /** the gateway's verdict: relay, tag, quarantine, defer, reject, or error */
  verdict: string;
  score: number;
  findings: { symbol: string; score: number; detail?: string; excepted?: string }[];
  /** the final SMTP reply, e.g. "250 2.0.0 Ok: quarantined as 01J…" */
  reply: string;
  /** quarantine id, when held */
  quarantineId?: string;
  /** the quarantine state at the end of the replay (a held item may have been released meanwhile) */
  finalState?: 'held' | 'released' | 'deleted';
}

export interface ReplayOptions {
  /** DNS servers (host:port), or 'unreachable' */
  dns: string[] | 'unreachable';
  /** extra policy overrides (`key=value`) */
  overrides?: string[];
  /** called after each message */
  progress?: (done: number, total: number) => void;
}

/** A loopback port where no DNS server listens: each query fails at once (ECONNREFUSED, a temperror). */
const NO_DNS = ['127.0.0.1:9'];

/** Collects the gateway's "message" log lines (the only ones the replay reads). */
function messageLog(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.includes('"event":"message"')) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

export async function replayOrganisation(org: OrgSetup, messages: GeneratedMessage[], options: ReplayOptions): Promise<ReplayedMessage[]> {
  const sink = await startSink();
  const quarantineDir = mkdtempSync(path.join(tmpdir(), `mailmoat-threads-${org.key}-`));
  const loaded = loadPolicy(defaultPolicyFile, [
    'listen.port=1',
    `downstream.port=${sink.port}`,
    'downstream.starttls=off',
    `spool.dir=${path.join(repoRoot, 'var', 'test-spool')}`,
    `quarantine.dir=${quarantineDir}`,
    `network.internalNetworks=${JSON.stringify(org.internalNetworks)}`,
    `network.internalDomains=${JSON.stringify(org.internalDomains)}`,
    // months of mail replayed in a minute: per-hour sender rates would measure the replay, not the mail
    'rate.enabled=false',
    // the gateway's own DNS client asks these servers (the policy's `dns` section)
    `dns.servers=${JSON.stringify(options.dns === 'unreachable' ? NO_DNS : options.dns)}`,
    ...(options.overrides ?? []),
  ]);
  const log = messageLog();
  const logger = createLogger('info', log.stream);
  const gateway = new Gateway(loaded, logger, { state: { kind: 'memory' }, log: logger });
  const { port } = await gateway.listen('127.0.0.1', 0);
  const results: ReplayedMessage[] = [];
  try {
    for (const message of messages) {
      const before = log.lines.length;
      const reply = await send(port, message);
      const line = await nextLine(log.lines, before);
      const findings = (line?.findings as ReplayedMessage['findings'] | undefined) ?? [];
      const quarantineId = /quarantined as (\S+)/.exec(reply)?.[1];
      results.push({
        message,
        verdict: (line?.verdict as string | undefined) ?? 'error',
        score: (line?.score as number | undefined) ?? 0,
        findings,
        reply,
        ...(quarantineId ? { quarantineId } : {}),
      });
      options.progress?.(results.length, messages.length);
    }
    const store = new QuarantineStore(quarantineDir);
    for (const r of results) if (r.quarantineId) r.finalState = (await store.get(r.quarantineId)).state;
  } finally {
    await gateway.drain();
    await sink.close();
    rmSync(quarantineDir, { recursive: true, force: true });
  }
  return results;
}

/** The gateway logs a message after answering: wait (briefly) for its line. */
async function nextLine(lines: Record<string, unknown>[], before: number): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 400 && lines.length <= before; i++) await new Promise((r) => setTimeout(r, 5));
  return lines[before];
}

/** One SMTP transaction with XFORWARD ADDR/NAME/HELO; the final reply as "code text". */
async function send(port: number, m: GeneratedMessage): Promise<string> {
  const client = await SmtpClient.connect({ host: '127.0.0.1', port, connectTimeout: 5000, commandTimeout: 30_000 });
  try {
    await client.ehlo('replay.test');
    // the MTA in front passes on the name it verified (forward-confirmed reverse DNS): in the corpus's
    // world a server's HELO is its PTR name; a PC's "DESKTOP-…" or "[192.168.…]" verifies to nothing
    const name = verifiedClientName(m.client.helo) ?? '[UNAVAILABLE]';
    const xf = await client.command(`XFORWARD ADDR=${m.client.address} NAME=${encodeXtext(name)} HELO=${encodeXtext(m.client.helo)} PROTO=ESMTP`);
    if (xf.code !== 250) return `${xf.code} ${xf.lines.join(' ')}`;
    const mail = await client.command(`MAIL FROM:<${m.envelope.mailFrom}>`);
    if (mail.code !== 250) return `${mail.code} ${mail.lines.join(' ')}`;
    let accepted = 0;
    let refusal = '';
    for (const r of m.envelope.rcptTo) {
      const reply = await client.command(`RCPT TO:<${r}>`);
      if (reply.code === 250) accepted++;
      else refusal = `${reply.code} ${reply.lines.join(' ')}`;
    }
    if (!accepted) return refusal;
    const go = await client.command('DATA');
    if (go.code !== 354) return `${go.code} ${go.lines.join(' ')}`;
    const done = await client.sendMessage(Readable.from([m.raw]), 60_000);
    return `${done.code} ${done.lines.join(' ')}`;
  } finally {
    await client.quit();
  }
}
