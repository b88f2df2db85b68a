// The SMTP ingress: smtp-server configured as a transparent proxy in front of the MTA. Each client
// transaction is mirrored to the downstream in real time (MAIL, then each RCPT with the downstream's
// own reply); at the end of DATA the message is inspected, a verdict taken and acted on, and the
// client hears 250 only once the downstream accepted the message.
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '../observe/log.js';
import type { Policy } from '../policy/schema.js';
import { inNetworks } from '../policy/network.js';
import { DownstreamPool, DownstreamSession, type ClientIdentity } from '../relay/downstream.js';
import { formatReply, type SmtpReply } from '../relay/smtp-client.js';
import {
  addedHeaders,
  judge,
  pairPasswords,
  quarantineMessage,
  QuarantineWriteError,
  recordVerdict,
  rememberRelayed,
  type Judgement,
  type MessageFacts,
  type Services,
} from '../pipeline.js';
import type { Verdict } from '../verdict.js';
import { RateLimiter, RateRefusal } from '../rate/limiter.js';
import { applySmtpServerPatches, commandLine, receivedXforward } from './smtp-server-patches.js';
import { countMessage } from '../observe/metrics.js';
import { sendQuarantineNotice } from '../quarantine/notify.js';
import { PasswordPairs } from '../quarantine/password-pairs.js';
import { Spool } from '../message/spool.js';
import { verifiedClientName } from '../message/parsed.js';
import { withinMemoryBudget } from '../message/admission.js';
import { clientErrorFor, mirror, SmtpError, Transaction, type AbandonReason } from './transaction.js';
import { judgeRecipient } from './recipient.js';
import { ConnectionGuard } from './connection-guard.js';

export interface PolicySource {
  readonly policy: Policy;
  readonly version: string;
}

type Callback = (err?: Error | null) => void;

export class Gateway {
  readonly server: SMTPServer;
  private readonly transactions = new Map<SMTPServerSession, Transaction>();
  private readonly seenSessions = new WeakSet<SMTPServerSession>();
  private readonly pool = new DownstreamPool();
  /** hook work in progress (MAIL, RCPT, DATA): drain waits for it to unwind */
  private readonly handlers = new Set<Promise<void>>();
  private draining = false;
  /** connections per client address, command and DATA time bounds, junk commands */
  private readonly guard: ConnectionGuard;
  /** outbound sender rates: MAIL-time holds, counting after the verdict (src/rate/) */
  readonly rate: RateLimiter;
  /** the separate password mail: held encrypted items and the passwords that come later (or earlier) */
  readonly pairs: PasswordPairs;

  constructor(
    private readonly source: PolicySource,
    private readonly log: Logger,
    /** shared state for the analyzers (thread memory, rates); without it they run stateless */
    private readonly services?: Services,
  ) {
    applySmtpServerPatches();
    const state = services?.state ?? { kind: 'memory' };
    this.rate = new RateLimiter(state, log);
    this.pairs = new PasswordPairs(state, log);
    const policy = source.policy;
    const tls = policy.tls ? { key: readFileSync(policy.tls.key), cert: readFileSync(policy.tls.cert) } : {};
    this.server = new SMTPServer({
      ...tls,
      name: policy.hostname,
      banner: 'Mailmoat ESMTP',
      disabledCommands: policy.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      authOptional: true,
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      hidePIPELINING: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      useXForward: true, // narrowed per connection to policy.xforwardHosts in onConnect
      logger: false,
      ...this.limits(policy),
      onConnect: (session, cb) => this.onConnect(session, cb),
      onMailFrom: (address, session, cb) => this.track(this.onMailFrom(address, session, cb), cb),
      onRcptTo: (address, session, cb) => this.track(this.onRcptTo(address, session, cb), cb),
      onData: (stream, session, cb) => this.track(this.onData(stream, session, cb), cb),
      onClose: (session) => this.onClose(session),
    });
    this.server.on('error', (err) => this.log.error({ event: 'smtp_error', err }, 'smtp server error'));
    this.guard = new ConnectionGuard(this.server, source, log);
  }

  /** The options smtp-server reads at run time: a policy reload applies them to live connections. */
  private limits(policy: Policy) {
    return {
      size: policy.limits.maxMessageSize,
      maxClients: policy.limits.maxClients,
      maxRecipients: policy.limits.maxRecipients,
      socketTimeout: policy.timeouts.client,
      // drain() ends transactions at its own deadline and logs them; smtp-server's own cut-off comes later
      closeTimeout: policy.timeouts.drain + DRAIN_UNWIND_MS,
      greetingDelay: policy.timeouts.greetingDelay,
    };
  }

  /** Called after a policy reload: listen address and TLS need a restart, everything else applies now. */
  applyPolicy(policy: Policy): void {
    Object.assign(this.server.options, this.limits(policy));
  }

  async listen(host: string, port: number): Promise<net.AddressInfo> {
    const address = await new Promise<net.AddressInfo>((resolve, reject) => {
      this.server.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.server.off('error', reject);
        resolve(this.server.server.address() as net.AddressInfo);
      });
    });
    await this.rate.open(() => this.source.policy); // the admin socket, when the policy names one
    return address;
  }

  get activeTransactions(): number {
    return this.transactions.size;
  }

  private onConnect(session: SMTPServerSession, cb: Callback): void {
    // XFORWARD re-emits connect with the forwarded address; the trust decision is the first one's
    if (this.seenSessions.has(session)) return cb();
    this.seenSessions.add(session);
    if (this.draining) return cb(new SmtpError(421, '4.3.2 Service shutting down'));
    const refused = this.guard.admit(session);
    if (refused) return cb(refused);
    if (!inNetworks(this.source.policy.xforwardHosts, session.remoteAddress)) {
      (session as SMTPServerSession & { disabledCommands?: string[] }).disabledCommands = [...(this.server.options.disabledCommands ?? []), 'XFORWARD'];
    }
    cb();
  }

  /**
   * A hook's work, known to drain() until it settles. The hooks answer the client themselves; one
   * that fails unexpectedly (a bug) still answers 451 and is logged, never an unhandled rejection.
   */
  private track(work: Promise<void>, cb: Callback): void {
    this.handlers.add(work);
    work
      .catch((err: unknown) => {
        this.log.error({ event: 'hook_error', err: errText(err) }, 'SMTP hook failed');
        cb(new SmtpError(451, '4.3.0 Temporary gateway error, try again later'));
      })
      .finally(() => this.handlers.delete(work))
      .catch(() => undefined);
  }

  private async onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): Promise<void> {
    // the client sent RSET, or a new MAIL after a failed one: RSET downstream, the connection is reused
    const previous = this.transactions.get(session);
    this.transactions.delete(session);
    await previous?.abandon('client_reset');
    if (this.draining) return cb(new SmtpError(421, '4.3.2 Service shutting down'));
    const tx = new Transaction(this.source.policy, this.source.version);
    tx.mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : _address.address;
    const line = commandLine(session);
    tx.mailLine = line;
    try {
      const held = await this.rate.checkMail(tx.policy, tx.id, session.remoteAddress, tx.mailFrom);
      if (held) throw new SmtpError(held.responseCode, held.message);
      const { session: downstream, reply } = await DownstreamSession.start(this.pool, tx.policy, identity(session), line);
      tx.downstream = downstream;
      if (reply.code >= 300) throw mirror(reply);
      this.transactions.set(session, tx);
      cb();
    } catch (err) {
      await tx.abandon('downstream_failed');
      const reply = clientErrorFor(err, tx.id);
      this.log.warn(
        { event: 'mail_refused', id: tx.id, client: session.remoteAddress, from: tx.mailFrom, reply: reply.reply, err: errText(err) },
        'MAIL refused',
      );
      cb(reply);
    }
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): Promise<void> {
    const tx = this.transactions.get(session);
    if (!tx || tx.done) return cb(new SmtpError(451, '4.3.0 Transaction lost, start again with MAIL'));
    const judged = judgeRecipient(tx.policy, session.remoteAddress, commandLine(session), address.address);
    if (!judged.accepted) {
      this.log.warn(
        { event: 'relay_denied', id: tx.id, client: session.remoteAddress, from: tx.mailFrom, rcpt: address.address, form: judged.form, reply: judged.text },
        'relay denied',
      );
      return cb(new SmtpError(judged.code, judged.text));
    }
    try {
      const reply = await tx.downstream!.forward(judged.line);
      if (reply.code >= 300) return cb(mirror(reply));
      tx.recipients.push(judged.address);
      tx.rcptLines.push(judged.line);
      cb();
    } catch (err) {
      this.transactions.delete(session);
      await tx.abandon('downstream_failed');
      cb(clientErrorFor(err, tx.id));
    }
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): Promise<void> {
    const tx = this.transactions.get(session);
    if (!tx || tx.done) {
      stream.resume();
      return cb(new SmtpError(451, '4.3.0 Transaction lost, start again with MAIL'));
    }
    const { policy } = tx;
    const spool = new Spool(policy.spool.dir, policy.spool.memoryLimit, policy.limits.maxMessageSize);
    tx.spool = spool;
    let verdict: Judgement | undefined;
    let downstreamReply: SmtpReply | undefined;
    let outcome: SmtpError | undefined;
    let quarantined = false;
    // smtp-server fails the DATA stream when the connection closes mid-message, before onClose runs
    stream.once('error', () => {
      if (!tx.done) this.abandon(tx, 'client_gone', session.remoteAddress).catch(() => undefined);
    });
    try {
      await spool.receive(stream);
      if (spool.exceeded) {
        throw new SmtpError(552, `5.3.4 Message size exceeds fixed maximum message size ${policy.limits.maxMessageSize}`);
      }
      const facts = this.facts(tx, session);
      // in turn under the memory budget: meanwhile the client simply waits for its reply
      const judged = await withinMemoryBudget(spool, policy, tx.signal, () => judge(spool, facts, this.services, tx.signal), { front: 'smtp' });
      tx.signal.throwIfAborted(); // nobody is waiting for this message: nothing is held or relayed
      const { headers, attachmentKinds } = judged.inspected;
      verdict = await this.rate
        .afterVerdict({ id: tx.id, policy, client: session.remoteAddress, mailFrom: tx.mailFrom, rcptTo: tx.recipients, headers, attachmentKinds }, judged)
        .catch((err: unknown) => {
          throw err instanceof RateRefusal ? new SmtpError(err.responseCode, err.message) : err;
        });
      if (verdict.action === 'reject') throw new SmtpError(550, `5.7.1 Message rejected by policy [${tx.id}]`);
      if (verdict.action === 'defer') throw new SmtpError(451, `4.7.1 Message deferred by policy, try again later [${tx.id}]`);
      if (verdict.action === 'quarantine') {
        tx.signal.throwIfAborted(); // the client left while the rate check ran: no copy for a message nobody was told about
        const held = await quarantineMessage(spool, facts, verdict);
        await tx.downstream!.reset();
        tx.done = true;
        quarantined = true;
        cb(null, `2.0.0 Ok: quarantined as ${tx.id}`);
        sendQuarantineNotice(held, policy, this.log).catch(() => undefined); // after the 250; logs its own failures
        pairPasswords(this.pairs, 'smtp', facts, verdict, 'quarantined'); // after the 250, in the background
        return;
      }
      downstreamReply = await tx.downstream!.data(this.relayBody(spool, verdict, tx));
      if (downstreamReply.code >= 300) throw mirror(downstreamReply);
      // before the 250: a reply to this message may follow at once, and must find it remembered
      await rememberRelayed(facts, verdict, this.services); // never throws; one memory round trip
      tx.downstream!.finish();
      tx.done = true;
      cb(null, downstreamReply.lines.join(' '));
      pairPasswords(this.pairs, 'smtp', facts, verdict, 'relayed'); // after the 250, in the background
    } catch (err) {
      if (tx.abandonReason) {
        // the client is gone or the drain deadline passed: its own log line says so, nobody to answer
        cb(new SmtpError(421, '4.4.2 Transaction abandoned'));
        return;
      }
      if (err instanceof QuarantineWriteError) {
        this.log.error({ event: 'quarantine_failed', id: tx.id, err: err.message }, 'quarantine write failed');
      }
      outcome = clientErrorFor(err, tx.id);
      await tx.downstream?.reset();
      tx.done = true;
      cb(outcome);
      if (!(err instanceof SmtpError) && !(err instanceof QuarantineWriteError)) {
        this.log.error({ event: 'message_error', id: tx.id, err: errText(err) }, 'message failed');
      }
    } finally {
      this.transactions.delete(session);
      await spool.dispose();
      this.logMessage(tx, session, spool, verdict, downstreamReply, outcome, quarantined);
    }
  }

  private facts(tx: Transaction, session: SMTPServerSession): MessageFacts {
    return {
      id: tx.id,
      receivedAt: new Date(tx.started),
      policy: tx.policy,
      policyVersion: tx.policyVersion,
      client: { address: session.remoteAddress, helo: session.hostNameAppearsAs ?? '', name: verifiedClientName(session.clientHostname) },
      envelope: { mailFrom: tx.mailFrom, mailLine: tx.mailLine, rcptTo: tx.recipients, rcptLines: tx.rcptLines },
    };
  }

  /**
   * The bytes sent downstream: the verdict header first when the policy asks for it, then the message
   * as received. Chunks when the spool holds the message in memory (one write), else a stream.
   */
  private relayBody(spool: Spool, judgement: Judgement, tx: Transaction): Readable | Buffer[] {
    const added = addedHeaders(judgement, tx.id, tx.policy);
    const header = added.length ? [Buffer.from(added.map(({ name, value }) => `${name}: ${value}\r\n`).join(''))] : [];
    const held = spool.inMemory();
    if (held) return [...header, ...held];
    const body = spool.read();
    if (!header.length) return body;
    return Readable.from(
      (async function* () {
        yield* header;
        yield* body;
      })(),
      { objectMode: false },
    );
  }

  private onClose(session: SMTPServerSession): void {
    const tx = this.transactions.get(session);
    if (!tx) return;
    this.transactions.delete(session);
    if (!tx.done) this.abandon(tx, 'client_gone', session.remoteAddress).catch(() => undefined);
  }

  /** Ends a transaction nobody will get an answer for, with the log line that says so. */
  private async abandon(tx: Transaction, reason: AbandonReason, client: string): Promise<void> {
    this.log.warn(
      { event: 'transaction_abandoned', id: tx.id, reason, client, from: tx.mailFrom, rcpt: tx.recipients },
      reason === 'shutdown' ? 'drain deadline passed mid-transaction; nothing relayed or held' : 'client disconnected mid-transaction; nothing relayed or held',
    );
    try {
      await tx.abandon(reason);
    } catch (err) {
      this.log.error({ event: 'abandon_failed', id: tx.id, err: errText(err) }, 'cleaning up an abandoned transaction failed');
    }
  }

  private logMessage(
    tx: Transaction,
    session: SMTPServerSession,
    spool: Spool,
    verdict: Verdict | undefined,
    downstream: SmtpReply | undefined,
    outcome: SmtpError | undefined,
    quarantined: boolean,
  ): void {
    countMessage('smtp', verdict?.action ?? (tx.abandonReason ? 'abandoned' : 'error'), verdict?.findings);
    if (verdict) recordVerdict(this.services, tx.policy, verdict);
    this.log.info(
      {
        event: 'message',
        id: tx.id,
        client: session.remoteAddress,
        helo: session.hostNameAppearsAs,
        from: tx.mailFrom,
        rcpt: tx.recipients,
        size: spool.received,
        verdict: verdict?.action ?? (tx.abandonReason ? 'abandoned' : 'error'),
        score: verdict?.score ?? 0,
        symbols: verdict?.findings.map((f) => f.symbol) ?? [],
        reason: verdict?.reason,
        downstream: downstream ? formatReply(downstream) : undefined,
        findings: verdict?.findings.map(({ symbol, score, part, detail, excepted }) => ({ symbol, score, part, detail, excepted })),
        quarantined: quarantined || undefined,
        reply: outcome ? outcome.reply : quarantined ? `250 2.0.0 Ok: quarantined as ${tx.id}` : downstream ? `250 ${downstream.lines.join(' ')}` : undefined,
        policy: tx.policyVersion,
        duration_ms: Date.now() - tx.started,
      },
      'message',
    );
  }

  /**
   * SIGTERM: stop accepting, let transactions in flight finish (up to timeouts.drain), tell idle
   * clients 421, and resolve once every connection is closed.
   */
  async drain(): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + this.source.policy.timeouts.drain;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const connections = (this.server as unknown as { connections: Set<{ session: SMTPServerSession; send(c: number, t: string): void; close(): void }> })
      .connections;
    const closeIdle = () => {
      for (const connection of connections) {
        if (!this.transactions.has(connection.session)) {
          connection.send(421, '4.3.2 Service shutting down');
          connection.close();
        }
      }
    };
    closeIdle();
    while (this.transactions.size && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      closeIdle();
    }
    const cut = [...this.transactions].filter(([, tx]) => !tx.done);
    await Promise.all(cut.map(([session, tx]) => this.abandon(tx, 'shutdown', session.remoteAddress)));
    for (const connection of connections) {
      connection.send(421, '4.3.2 Service shutting down');
      connection.close();
    }
    // the hooks of abandoned transactions unwind (their spool gone, their log line written)
    await settleWithin([...this.handlers], DRAIN_UNWIND_MS);
    // held items being tried with a password mail: what is not done by then stays held
    await this.pairs.drain(Math.max(0, deadline - Date.now()) + DRAIN_UNWIND_MS);
    await this.pool.closeAll();
    await this.rate.close();
    await closed;
    this.guard.stop();
  }
}

function identity(session: SMTPServerSession): ClientIdentity {
  return {
    forwarded: receivedXforward(session),
    addr: session.remoteAddress,
    port: session.remotePort,
    helo: session.hostNameAppearsAs ?? '',
    proto: session.openingCommand === 'HELO' ? 'SMTP' : 'ESMTP',
  };
}

/** How long drain waits, after the deadline, for abandoned transactions' hooks to unwind. */
const DRAIN_UNWIND_MS = 5000;

async function settleWithin(work: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([Promise.allSettled(work), timeout]);
  clearTimeout(timer);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
