// One MTA↔milter connection: the conversation of src/milter/codec.ts turned into a message for the
// pipeline (src/pipeline.ts), and the verdict turned back into milter replies. The MTA drives; we
// answer only where the negotiated protocol expects an answer. All state is per connection.
//
// The message the analyzers see is rebuilt from what the MTA sends: each header as `Name:value`
// (the leading space kept with SMFIP_HDR_LEADSPC, else Postfix removed one and we put it back),
// folded lines with CRLF, an empty line, then the body bytes exactly as received (Postfix sends them
// dot-unstuffed with CRLF). Postfix hides its own topmost Received: header from milters.
import type net from 'node:net';
import { finished } from 'node:stream/promises';
import { isStorageFull, Spool } from '../message/spool.js';
import { verifiedClientName } from '../message/parsed.js';
import { withinMemoryBudget } from '../message/admission.js';
import { messageId } from '../observe/id.js';
import type { Logger } from '../observe/log.js';
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
import { RateRefusal, type RateLimiter } from '../rate/limiter.js';
import { sendQuarantineNotice } from '../quarantine/notify.js';
import type { PasswordPairs } from '../quarantine/password-pairs.js';
import { countMessage } from '../observe/metrics.js';
import type { QuarantineMetadata } from '../quarantine/store.js';
import type { Policy } from '../policy/schema.js';
import type { Verdict } from '../verdict.js';
import {
  Act,
  Cmd,
  decodeConnect,
  decodeEnvelope,
  decodeHeader,
  decodeMacro,
  decodeOptneg,
  decodeStrings,
  encode,
  foldHeaderValue,
  MacroStage,
  MilterProtocolError,
  negotiate,
  Proto,
  replyText,
  type ConnectInfo,
  type Negotiated,
  type Packet,
} from './codec.js';

export interface PolicySource {
  readonly policy: Policy;
  readonly version: string;
}

/** A refusal decided at MAIL or RCPT time (e.g. a suspended sender): 4xx or 5xx with an enhanced code. */
export interface EnvelopeDecision {
  code: number;
  enhanced: string;
  text: string;
}

export interface EnvelopeContext {
  id: string;
  policy: Policy;
  client: { address: string; helo: string; name?: string };
  /** envelope sender without angle brackets ('' for the null sender) */
  mailFrom: string;
  mailArgs: string[];
  /** recipients accepted so far */
  rcptTo: string[];
  /** the authenticated user (`{auth_authen}`), when the MTA sent it */
  authenticated: string | undefined;
  macro(name: string): string | undefined;
}

/**
 * Decisions before the message content (the sender-rate engine's hook point). When a hook is
 * present the milter negotiates replies for that stage; without one, MAIL and RCPT need no round trip.
 */
export interface EnvelopeHooks {
  mail?: (ctx: EnvelopeContext) => Promise<EnvelopeDecision | undefined> | EnvelopeDecision | undefined;
  rcpt?: (ctx: EnvelopeContext, rcpt: { address: string; args: string[] }) => Promise<EnvelopeDecision | undefined> | EnvelopeDecision | undefined;
}

/** Macro lists asked for in the OPTNEG reply (the MTA sends only these; at most 5 per stage). */
export const MACRO_LISTS = new Map<number, string[]>([
  [MacroStage.CONNECT, ['j', '{daemon_name}', '{client_addr}', '{client_port}', '{client_name}']],
  [MacroStage.HELO, ['{tls_version}', '{cipher}']],
  [MacroStage.ENVFROM, ['i', '{auth_type}', '{auth_authen}', '{mail_addr}']],
  [MacroStage.ENVRCPT, ['i', '{rcpt_addr}', '{rcpt_mailer}']],
  [MacroStage.EOM, ['i', '{client_addr}']],
]);

/** Macro stages in conversation order: a MACRO or command for one stage clears the later ones. */
const STAGE_ORDER: Record<string, number> = { C: 0, H: 1, M: 2, R: 3, T: 4, L: 5, N: 6, B: 7, E: 8 };

/** Too many bytes queued behind a slow EOB: stop reading the socket until it catches up. */
const HIGH_WATER = 4 * 1024 * 1024;

interface Message {
  id: string;
  started: number;
  policy: Policy;
  policyVersion: string;
  mailFrom: string;
  mailArgs: string[];
  mailLine: string;
  rcptTo: string[];
  rcptLines: string[];
  tooManyRecipients: boolean;
  spool: Spool;
  inBody: boolean;
  /** the MTA's queue id (macro `i`) */
  queueId: string | undefined;
  /** aborted when the message is dropped (the MTA went away or aborted it): its scan stops, nothing is held */
  aborter: AbortController;
}

export interface SessionOptions {
  source: PolicySource;
  log: Logger;
  hooks: EnvelopeHooks;
  maxPacket: number;
  /** shared state for the analyzers (thread memory, rates); the same object the SMTP front end gets */
  services?: Services;
  /** outbound sender rates: counting after the verdict, as in the SMTP front end */
  rate?: RateLimiter;
  /** the separate password mail, as in the SMTP front end (after the reply, in the background) */
  pairs?: PasswordPairs;
  /** the server is past a connection limit: CONNECT gets this REPLYCODE text, then the connection ends */
  refusal?: string;
}

export class MilterSession {
  private negotiated: Negotiated | undefined;
  private readonly macros = new Map<string, Map<string, string>>();
  private connect: ConnectInfo | undefined;
  private helo = '';
  private message: Message | undefined;
  private queue: Packet[] = [];
  private queuedBytes = 0;
  private running = false;
  private closed = false;
  /** a message is between MAIL and its final reply (drain waits for it) */
  busy = false;
  onIdle: (() => void) | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: SessionOptions,
  ) {}

  private get log(): Logger {
    return this.options.log;
  }

  /** The MTA has started an SMTP session on this connection (CONNECT). */
  get started(): boolean {
    return this.connect !== undefined;
  }

  /** Whole packets from the connection's reader, in order. */
  enqueue(packets: Packet[]): void {
    for (const packet of packets) {
      this.queue.push(packet);
      this.queuedBytes += packet.data.length + 5;
    }
    if (this.queuedBytes > HIGH_WATER) this.socket.pause();
    if (!this.running) this.run().catch((err: unknown) => this.protocolError(err)); // run() handles its own errors; this is the last net
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length && !this.closed) {
        const packet = this.queue.shift()!;
        this.queuedBytes -= packet.data.length + 5;
        const pending = this.handle(packet);
        if (pending) await pending;
        if (this.queuedBytes <= HIGH_WATER / 2 && this.socket.isPaused()) this.socket.resume();
      }
    } catch (err) {
      this.protocolError(err);
    } finally {
      this.running = false;
    }
  }

  protocolError(err: unknown): void {
    if (this.closed) return;
    const protocol = err instanceof MilterProtocolError;
    this.log.warn(
      {
        event: protocol ? 'milter_protocol_error' : 'milter_error',
        front: 'milter',
        id: this.message?.id,
        peer: this.socket.remoteAddress,
        err: (err as Error)?.message ?? String(err),
      },
      protocol ? 'milter protocol error: closing this connection' : 'milter session failed: closing this connection',
    );
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    if (this.message) {
      this.log.warn(
        {
          event: 'transaction_abandoned',
          front: 'milter',
          id: this.message.id,
          client: this.clientAddress(),
          from: this.message.mailFrom,
          rcpt: this.message.rcptTo,
          queueId: this.message.queueId,
        },
        'milter connection ended mid-message',
      );
    }
    this.dropMessage();
    this.socket.destroy();
  }

  /** Called when the socket closed from the other side. */
  ended(): void {
    if (this.closed) return;
    this.close();
  }

  private write(packet: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(packet);
  }

  /** A reply to an event whose reply may have been negotiated away with an SMFIP_NR_* flag. */
  private continueUnless(noReplyFlag: number): void {
    if (!(this.negotiated!.protocol & noReplyFlag)) this.write(encode.continue());
  }

  private handle(packet: Packet): Promise<void> | void {
    const { cmd, data } = packet;
    if (cmd === Cmd.OPTNEG) return this.optneg(data);
    if (!this.negotiated) throw new MilterProtocolError(`command ${describe(cmd)} before option negotiation`);
    if (this.options.refusal) return this.refuse(cmd);
    switch (cmd) {
      case Cmd.MACRO: {
        const { stage, macros } = decodeMacro(data);
        this.clearAfter(stage);
        this.macros.set(stage, macros);
        return;
      }
      case Cmd.CONNECT: {
        // a new SMTP session (first, or after QUIT_NC): keep only the macros sent for it
        const connectMacros = this.macros.get('C');
        this.resetConnection();
        if (connectMacros) this.macros.set('C', connectMacros);
        this.connect = decodeConnect(data);
        return this.continueUnless(Proto.NR_CONN);
      }
      case Cmd.HELO:
        this.clearAfter('H');
        this.dropMessage();
        this.helo = decodeStrings(data, 'HELO')[0] ?? '';
        return this.continueUnless(Proto.NR_HELO);
      case Cmd.MAIL:
        return this.mail(data);
      case Cmd.RCPT:
        return this.rcpt(data);
      case Cmd.DATA:
        this.ensureMessage();
        return this.continueUnless(Proto.NR_DATA);
      case Cmd.HEADER:
        return this.header(data);
      case Cmd.EOH:
        return this.endOfHeaders();
      case Cmd.BODY:
        return this.body(data);
      case Cmd.BODYEOB:
        return this.endOfMessage(data);
      case Cmd.ABORT:
        // RSET, a new MAIL, or (twice, in Postfix) the end of a message already answered: no reply
        this.clearAfter('H');
        this.dropMessage();
        return;
      case Cmd.UNKNOWN:
        decodeStrings(data, 'UNKNOWN');
        return this.continueUnless(Proto.NR_UNKN);
      case Cmd.QUIT:
        this.dropMessage();
        this.close();
        return;
      case Cmd.QUIT_NC:
        // the session ends, the connection stays for another one; only the negotiation survives
        this.resetConnection();
        return;
      default:
        throw new MilterProtocolError(`unknown command ${describe(cmd)}`);
    }
  }

  private optneg(data: Buffer): void {
    const offer = decodeOptneg(data);
    const policy = this.options.source.policy;
    const hooks = this.options.hooks;
    const actions = Act.ADDHDRS | (policy.milter.quarantine === 'mta-hold' ? Act.QUARANTINE : 0);
    // no reply where we never decide; MAIL/RCPT only when a hook decides there
    let protocol = Proto.NR_CONN | Proto.NR_HELO | Proto.NR_DATA | Proto.NR_HDR | Proto.NR_EOH | Proto.NR_BODY | Proto.NR_UNKN | Proto.HDR_LEADSPC;
    if (!hooks.mail) protocol |= Proto.NR_MAIL;
    if (!hooks.rcpt) protocol |= Proto.NR_RCPT;
    if (this.options.refusal) protocol &= ~Proto.NR_CONN; // the MTA must wait for our answer to CONNECT
    this.resetConnection();
    this.negotiated = negotiate(offer, { actions, protocol, macros: MACRO_LISTS });
    this.write(encode.optneg(this.negotiated));
    this.log.debug(
      {
        event: 'milter_negotiated',
        front: 'milter',
        peer: this.socket.remoteAddress,
        offer,
        version: this.negotiated.version,
        actions: this.negotiated.actions,
        protocol: this.negotiated.protocol,
      },
      'milter options negotiated',
    );
  }

  /**
   * A connection past a limit: CONNECT is answered 4xx, so the MTA tempfails this SMTP session (a
   * closed connection would get milter_default_action, which may be `accept`); then we hang up.
   */
  private refuse(cmd: number): void {
    if (cmd === Cmd.MACRO) return;
    if (cmd === Cmd.CONNECT) this.write(encode.replyCode(this.options.refusal!));
    this.closed = true;
    this.queue = [];
    this.socket.end();
    this.socket.once('finish', () => this.socket.destroy());
  }

  // ------------------------------------------------------------------------------------------------
  // macros

  private clearAfter(stage: string): void {
    const order = STAGE_ORDER[stage];
    if (order === undefined) return; // 'U' (unknown) and anything else clears nothing
    for (const key of [...this.macros.keys()]) {
      const o = STAGE_ORDER[key];
      if (o !== undefined && o > order) this.macros.delete(key);
    }
  }

  /** The latest value of a macro, `i` or `{name}` (braces optional). */
  macro(name: string): string | undefined {
    const names = name.length > 1 && !name.startsWith('{') ? [`{${name}}`, name] : [name];
    const stages = [...this.macros.entries()].sort((a, b) => (STAGE_ORDER[b[0]] ?? -1) - (STAGE_ORDER[a[0]] ?? -1));
    for (const [, values] of stages) {
      for (const n of names) {
        const value = values.get(n);
        if (value !== undefined) return value;
      }
    }
    return undefined;
  }

  private resetConnection(): void {
    this.dropMessage();
    this.macros.clear();
    this.connect = undefined;
    this.helo = '';
  }

  private clientAddress(): string {
    return this.connect?.address || this.macro('client_addr') || '';
  }

  // ------------------------------------------------------------------------------------------------
  // the message

  private ensureMessage(): Message {
    if (this.message) return this.message;
    const { policy, version } = this.options.source;
    const spool = new Spool(policy.spool.dir, policy.spool.memoryLimit, policy.limits.maxMessageSize);
    spool.on('error', () => undefined); // surfaced where we await it
    this.message = {
      id: messageId(),
      started: Date.now(),
      policy,
      policyVersion: version,
      mailFrom: '',
      mailArgs: [],
      mailLine: '',
      rcptTo: [],
      rcptLines: [],
      tooManyRecipients: false,
      spool,
      inBody: false,
      queueId: undefined,
      aborter: new AbortController(),
    };
    this.busy = true;
    return this.message;
  }

  private dropMessage(): void {
    const message = this.message;
    this.message = undefined;
    if (message) {
      message.aborter.abort(new Error('milter message dropped'));
      message.spool.destroy();
      message.spool
        .dispose()
        .catch((err: unknown) => this.log.error({ event: 'spool_cleanup_failed', front: 'milter', id: message.id, err: String(err) }, 'spool cleanup failed'));
    }
    if (this.busy) {
      this.busy = false;
      this.onIdle?.();
    }
  }

  private context(message: Message): EnvelopeContext {
    return {
      id: message.id,
      policy: message.policy,
      client: { address: this.clientAddress(), helo: this.helo, name: verifiedClientName(this.macro('{client_name}')) },
      mailFrom: message.mailFrom,
      mailArgs: message.mailArgs,
      rcptTo: message.rcptTo,
      authenticated: this.macro('auth_authen') || undefined,
      macro: (name) => this.macro(name),
    };
  }

  private async mail(data: Buffer): Promise<void> {
    this.clearAfter('M');
    this.dropMessage();
    const { address, args } = decodeEnvelope(data, 'MAIL');
    const message = this.ensureMessage();
    message.mailFrom = unbracket(address);
    message.mailArgs = args;
    message.mailLine = ['MAIL FROM:' + address, ...args].join(' ');
    message.queueId = this.macro('i');
    const hook = this.options.hooks.mail;
    if (!hook) return this.continueUnless(Proto.NR_MAIL);
    const decision = await this.withProgress(() => hook(this.context(message)), message.policy);
    if (decision) {
      this.log.info(
        {
          event: 'mail_refused',
          front: 'milter',
          id: message.id,
          client: this.clientAddress(),
          from: message.mailFrom,
          reply: `${decision.code} ${decision.enhanced} ${decision.text}`,
        },
        'MAIL refused',
      );
      this.write(encode.replyCode(replyText(decision.code, decision.enhanced, decision.text)));
      this.dropMessage();
      return;
    }
    this.continueUnless(Proto.NR_MAIL);
  }

  private async rcpt(data: Buffer): Promise<void> {
    this.clearAfter('R');
    const { address, args } = decodeEnvelope(data, 'RCPT');
    const message = this.ensureMessage();
    message.queueId ??= this.macro('i');
    const accept = () => {
      if (message.rcptTo.length >= message.policy.limits.maxRecipients) message.tooManyRecipients = true;
      else {
        message.rcptTo.push(unbracket(address));
        message.rcptLines.push(['RCPT TO:' + address, ...args].join(' '));
      }
    };
    const hook = this.options.hooks.rcpt;
    if (!hook) {
      accept();
      return this.continueUnless(Proto.NR_RCPT);
    }
    const decision = await this.withProgress(() => hook(this.context(message), { address: unbracket(address), args }), message.policy);
    if (decision) {
      // only this recipient: the message goes on with the others
      this.log.info(
        {
          event: 'rcpt_refused',
          front: 'milter',
          id: message.id,
          client: this.clientAddress(),
          from: message.mailFrom,
          rcpt: unbracket(address),
          reply: `${decision.code} ${decision.enhanced} ${decision.text}`,
        },
        'RCPT refused',
      );
      this.write(encode.replyCode(replyText(decision.code, decision.enhanced, decision.text)));
      return;
    }
    accept();
    this.continueUnless(Proto.NR_RCPT);
  }

  /** Writes to the spool with back-pressure: the next packet waits while the spool is full. */
  private spoolWrite(message: Message, bytes: Buffer): Promise<void> | void {
    const { spool } = message;
    // a failed spool (disk full) takes no more bytes: end of message answers the failure (finished rejects)
    if (spool.destroyed || spool.write(bytes)) return;
    return new Promise<void>((resolve) => {
      const go = () => {
        spool.off('drain', go);
        spool.off('close', go);
        resolve();
      };
      spool.on('drain', go);
      spool.on('close', go);
    });
  }

  private header(data: Buffer): Promise<void> | void {
    const { name, value } = decodeHeader(data);
    const message = this.ensureMessage();
    this.continueUnless(Proto.NR_HDR);
    if (message.inBody) return; // a header after the body started cannot be placed: ignore it
    const leadingSpace = (this.negotiated!.protocol & Proto.HDR_LEADSPC) !== 0;
    const line = Buffer.concat([name, Buffer.from(leadingSpace ? ':' : ': '), crlf(value), CRLF]);
    return this.spoolWrite(message, line);
  }

  private startBody(message: Message): Promise<void> | void {
    if (message.inBody) return;
    message.inBody = true;
    return this.spoolWrite(message, CRLF);
  }

  private endOfHeaders(): Promise<void> | void {
    const message = this.ensureMessage();
    this.continueUnless(Proto.NR_EOH);
    return this.startBody(message);
  }

  private async body(data: Buffer): Promise<void> {
    const message = this.ensureMessage();
    this.continueUnless(Proto.NR_BODY);
    await this.startBody(message);
    if (data.length) await this.spoolWrite(message, data);
  }

  private async endOfMessage(data: Buffer): Promise<void> {
    const message = this.ensureMessage();
    await this.startBody(message);
    if (data.length) await this.spoolWrite(message, data); // libmilter: data here is a last body chunk
    const { spool, policy } = message;
    spool.end();
    let verdict: Judgement | undefined;
    let held: QuarantineMetadata | undefined;
    let reply = '';
    let quarantined: 'ours' | 'mta-hold' | undefined;
    const packets: Buffer[] = [];
    message.queueId = this.macro('i') ?? message.queueId;
    try {
      await finished(spool);
      if (spool.exceeded) {
        reply = replyText(552, '5.3.4', `Message size exceeds fixed maximum message size ${policy.limits.maxMessageSize} [${message.id}]`);
      } else if (message.tooManyRecipients) {
        reply = replyText(452, '4.5.3', `Too many recipients [${message.id}]`);
      } else {
        const facts = this.facts(message);
        const { signal } = message.aborter;
        // in turn under the memory budget; the MTA hears "still working" while the message waits
        const judged = await this.withProgress(
          () => withinMemoryBudget(spool, policy, signal, () => judge(spool, facts, this.options.services, signal), { front: 'milter' }),
          policy,
        );
        const { headers, attachmentKinds } = judged.inspected;
        const rated = {
          id: message.id,
          policy,
          client: facts.client.address,
          mailFrom: facts.envelope.mailFrom,
          rcptTo: facts.envelope.rcptTo,
          headers,
          attachmentKinds,
        };
        verdict = this.options.rate ? await this.options.rate.afterVerdict(rated, judged) : judged;
        if (verdict.action === 'reject') reply = replyText(550, '5.7.1', `Message rejected by policy [${message.id}]`);
        else if (verdict.action === 'defer') reply = replyText(451, '4.7.1', `Message deferred by policy, try again later [${message.id}]`);
        else if (verdict.action === 'quarantine' && policy.milter.quarantine === 'ours') {
          signal.throwIfAborted(); // the MTA went away meanwhile: no copy for a message nobody was told about
          held = await this.withProgress(() => quarantineMessage(spool, facts, verdict!), policy);
          quarantined = 'ours';
        } else {
          if (verdict.action === 'quarantine') {
            quarantined = 'mta-hold';
            packets.push(encode.quarantine(`Mailmoat: ${verdict.reason} [${message.id}]`));
          }
          const leadingSpace = (this.negotiated!.protocol & Proto.HDR_LEADSPC) !== 0;
          for (const { name, value } of addedHeaders(verdict, message.id, policy)) {
            packets.push(encode.addHeader(name, (leadingSpace ? ' ' : '') + foldHeaderValue(name, value)));
          }
        }
      }
    } catch (err) {
      if (message.aborter.signal.aborted) {
        // dropped mid-scan (close() logged transaction_abandoned): the scan stopped, nothing is held, nobody to answer
        this.logMessage(message, undefined, 'none: the MTA went away', undefined);
        return;
      }
      if (isStorageFull(err) || (err instanceof QuarantineWriteError && isStorageFull(err.cause))) {
        this.log.error({ event: 'storage_full', front: 'milter', id: message.id, err: (err as Error).message }, 'no space left for the message');
        reply = replyText(452, '4.3.1', `Insufficient system storage, try again later [${message.id}]`);
      } else if (err instanceof QuarantineWriteError) {
        this.log.error({ event: 'quarantine_failed', front: 'milter', id: message.id, err: err.message }, 'quarantine write failed');
        reply = replyText(451, '4.3.0', `Temporary failure storing the message, try again later [${message.id}]`);
      } else if (err instanceof RateRefusal) {
        const [, enhanced = '4.3.0', text = err.message] = /^(\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(err.message) ?? [];
        reply = replyText(err.responseCode, enhanced, text);
      } else {
        this.log.error({ event: 'message_error', front: 'milter', id: message.id, err: (err as Error)?.message ?? String(err) }, 'message failed');
        reply = replyText(451, '4.3.0', `Temporary gateway error, try again later [${message.id}]`);
      }
      quarantined = undefined;
      packets.length = 0;
    }
    if (this.closed) {
      // the MTA went away after the verdict: nothing to answer; what was decided is logged
      this.logMessage(message, verdict, 'none: the MTA went away', quarantined);
      return;
    }
    let given: string;
    if (reply) {
      this.write(encode.replyCode(reply));
      given = reply.replace(/%%/g, '%').replace(/\r\n/g, ' ');
    } else if (quarantined === 'ours') {
      this.write(encode.discard());
      given = `discard: quarantined as ${message.id}`;
      if (held) sendQuarantineNotice(held, policy, this.log).catch(() => undefined); // after the reply; logs its own failures
      if (held && verdict && this.options.pairs) pairPasswords(this.options.pairs, 'milter', this.facts(message), verdict, 'quarantined');
    } else {
      for (const p of packets) this.write(p);
      this.write(encode.continue());
      given = quarantined === 'mta-hold' ? 'hold (MTA quarantine), continue' : packets.length ? 'continue (header added)' : 'continue';
    }
    this.logMessage(message, verdict, given, quarantined);
    if (verdict && !reply && quarantined === undefined) {
      // relayed: Postfix delivers it; what the thread memory learns from it (never throws)
      await rememberRelayed(this.facts(message), verdict, this.options.services);
      if (this.options.pairs) pairPasswords(this.options.pairs, 'milter', this.facts(message), verdict, 'relayed');
    }
    if (this.message === message) this.dropMessage();
  }

  private facts(message: Message): MessageFacts {
    return {
      id: message.id,
      receivedAt: new Date(message.started),
      policy: message.policy,
      policyVersion: message.policyVersion,
      client: { address: this.clientAddress(), helo: this.helo, name: verifiedClientName(this.macro('{client_name}')) },
      envelope: { mailFrom: message.mailFrom, mailLine: message.mailLine, rcptTo: message.rcptTo, rcptLines: message.rcptLines },
    };
  }

  /** Runs slow work, telling the MTA "still working" (PROGRESS) every progressInterval meanwhile. */
  private async withProgress<T>(work: () => Promise<T> | T, policy: Policy): Promise<T> {
    const every = policy.milter.progressInterval;
    const timer = every > 0 ? setInterval(() => this.write(encode.progress()), every) : undefined;
    try {
      return await work();
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  private logMessage(message: Message, verdict: Verdict | undefined, reply: string, quarantined: 'ours' | 'mta-hold' | undefined): void {
    const action = verdict?.action ?? (message.aborter.signal.aborted ? 'abandoned' : 'error');
    countMessage('milter', action, verdict?.findings);
    if (verdict) recordVerdict(this.options.services, message.policy, verdict);
    this.log.info(
      {
        event: 'message',
        front: 'milter',
        id: message.id,
        queueId: message.queueId,
        client: this.clientAddress(),
        helo: this.helo,
        from: message.mailFrom,
        rcpt: message.rcptTo,
        size: message.spool.received,
        verdict: action,
        score: verdict?.score ?? 0,
        symbols: verdict?.findings.map((f) => f.symbol) ?? [],
        reason: verdict?.reason,
        findings: verdict?.findings.map(({ symbol, score, part, detail, excepted }) => ({ symbol, score, part, detail, excepted })),
        quarantined: quarantined ? true : undefined,
        quarantine: quarantined,
        reply,
        policy: message.policyVersion,
        duration_ms: Date.now() - message.started,
      },
      'message',
    );
  }
}

const CRLF = Buffer.from('\r\n');

/** Folded header values arrive with bare LF between lines; the message gets CRLF. */
function crlf(value: Buffer): Buffer {
  if (!value.includes(0x0a)) return value;
  return Buffer.from(value.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

function unbracket(address: string): string {
  const match = /^<(.*)>$/.exec(address.trim());
  return match ? match[1] : address.trim();
}

function describe(cmd: number): string {
  return cmd >= 0x20 && cmd < 0x7f ? `'${String.fromCharCode(cmd)}'` : `0x${cmd.toString(16).padStart(2, '0')}`;
}
