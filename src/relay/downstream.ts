// The downstream leg: connections to the MTA (pooled between transactions), and per client
// transaction XFORWARD with the original client's details, MAIL/RCPT mirrored one by one, DATA last.
import type { Readable } from 'node:stream';
import type { Policy } from '../policy/schema.js';
import { SmtpClient, SmtpClientError, type SmtpReply } from './smtp-client.js';
import { encodeXtext } from './xtext.js';

/** What the downstream MTA should log as the client (Postfix XFORWARD_README). */
export interface ClientIdentity {
  /** attributes as received from a trusted upstream XFORWARD, still xtext-encoded */
  forwarded?: Map<string, string>;
  addr: string;
  port: number;
  helo: string;
  proto: 'SMTP' | 'ESMTP';
}

const XFORWARD_LINE_MAX = 512;

/**
 * Idle downstream connections, kept for the next transaction (RSET-clean, XFORWARD sent afresh):
 * a before-queue proxy gets one connection per message from Postfix, and opening a new one
 * downstream each time (connect, greeting, EHLO, QUIT) would cost more than the message itself.
 */
export class DownstreamPool {
  private idle: { client: SmtpClient; key: string; timer: NodeJS.Timeout }[] = [];

  /** An idle connection to the same downstream with the same settings, if one is still usable. */
  take(policy: Policy): SmtpClient | undefined {
    const key = poolKey(policy);
    for (;;) {
      const index = this.idle.findIndex((entry) => entry.key === key);
      if (index === -1) return undefined;
      const [entry] = this.idle.splice(index, 1);
      clearTimeout(entry.timer);
      if (entry.client.usable) return entry.client;
      entry.client.close();
    }
  }

  release(client: SmtpClient, policy: Policy): void {
    if (!client.usable || this.idle.length >= policy.downstream.idleConnections) {
      client.quit().catch(() => undefined); // QUIT, then closed whatever the answer
      return;
    }
    const entry = { client, key: poolKey(policy), timer: setTimeout(() => this.expire(entry), policy.timeouts.downstreamIdle) };
    entry.timer.unref();
    this.idle.push(entry);
  }

  private expire(entry: (typeof this.idle)[number]): void {
    this.idle = this.idle.filter((e) => e !== entry);
    entry.client.quit().catch(() => undefined); // QUIT, then closed whatever the answer
  }

  async closeAll(): Promise<void> {
    const idle = this.idle;
    this.idle = [];
    await Promise.all(idle.map((e) => (clearTimeout(e.timer), e.client.quit())));
  }
}

const poolKeys = new WeakMap<Policy, string>();

/** Connections are shared only between transactions whose policies connect the same way. */
function poolKey(policy: Policy): string {
  let key = poolKeys.get(policy);
  if (key === undefined) {
    const { host, port, starttls, tlsVerify } = policy.downstream;
    key = JSON.stringify([host, port, starttls, tlsVerify, policy.hostname]);
    poolKeys.set(policy, key);
  }
  return key;
}

/**
 * The downstream side of one client transaction: MAIL/RCPT mirrored one by one, DATA only once the
 * message is to be relayed. A message that is not relayed never sees DATA, let alone `.`.
 */
export class DownstreamSession {
  /** DATA was answered 354 and the final reply is not in: only closing the connection ends this safely */
  private inData = false;
  private ended = false;

  private constructor(
    private readonly client: SmtpClient,
    private readonly policy: Policy,
    private readonly pool: DownstreamPool,
  ) {}

  /**
   * Starts the transaction with the client's MAIL line: on an idle pooled connection when there is
   * one (a stale one is replaced by a fresh connection: nothing was committed yet), else a new one.
   */
  static async start(
    pool: DownstreamPool,
    policy: Policy,
    identity: ClientIdentity,
    mailLine: string,
  ): Promise<{ session: DownstreamSession; reply: SmtpReply }> {
    const pooled = pool.take(policy);
    if (pooled) {
      try {
        return await DownstreamSession.begin(pooled, policy, pool, identity, mailLine);
      } catch (err) {
        pooled.close();
        if (!(err instanceof SmtpClientError)) throw err;
      }
    }
    return DownstreamSession.begin(await connect(policy), policy, pool, identity, mailLine);
  }

  private static async begin(client: SmtpClient, policy: Policy, pool: DownstreamPool, identity: ClientIdentity, mailLine: string) {
    try {
      const offered = client.extensions.get('XFORWARD');
      const xforward = policy.downstream.xforward && offered !== undefined ? xforwardCommands(identity, new Set(offered.toUpperCase().split(/\s+/))) : [];
      // XFORWARD and MAIL in one round trip where the server pipelines
      const replies = client.extensions.has('PIPELINING') ? await client.pipeline([...xforward, mailLine]) : await sequential(client, [...xforward, mailLine]);
      replies.slice(0, -1).forEach((reply) => expect(reply, 2, 'XFORWARD'));
      return { session: new DownstreamSession(client, policy, pool), reply: replies.at(-1)! };
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** The client's own RCPT line, forwarded verbatim; the reply is the downstream's. */
  forward(commandLine: string): Promise<SmtpReply> {
    return this.client.command(commandLine);
  }

  /**
   * DATA, the message (chunks held in memory, or a stream), `.`: returns the downstream's reply to
   * DATA when it is not 354, otherwise its reply to the final dot.
   */
  async data(message: Readable | Buffer[]): Promise<SmtpReply> {
    const go = await this.client.command('DATA');
    if (go.code !== 354) {
      if (!Array.isArray(message)) message.destroy();
      return go;
    }
    this.inData = true;
    const reply = await this.client.sendMessage(message, this.policy.timeouts.downstreamData);
    this.inData = false;
    return reply;
  }

  /** The transaction is over (the final dot was answered): the connection may serve the next one. */
  finish(): void {
    if (this.end()) this.pool.release(this.client, this.policy);
  }

  /**
   * Ends a transaction that was not relayed, or whose DATA failed: RSET and back to the pool (the
   * MTA logs no lost connection, and the client's next transaction reuses it). Mid-DATA, or with a
   * command still awaiting its reply (DATA's 354 may be on its way), an RSET could become message
   * text, so then the connection is dropped instead (never a `.`).
   */
  async reset(): Promise<void> {
    if (!this.end()) return;
    if (this.inData || !this.client.usable) return this.client.close();
    try {
      const reply = await this.client.command('RSET');
      if (reply.code === 250) return this.pool.release(this.client, this.policy);
    } catch {
      // not reusable
    }
    this.client.close();
  }

  /** Drops the connection at once, without `.`: the downstream discards the transaction. */
  abandon(): void {
    if (this.end()) this.client.close();
  }

  /**
   * The first of finish/reset/abandon ends the session; the others are then no-ops. A connection
   * back in the pool may already carry another client's transaction: a second RSET or close here
   * would break that one.
   */
  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    return true;
  }
}

async function sequential(client: SmtpClient, lines: string[]): Promise<SmtpReply[]> {
  const replies: SmtpReply[] = [];
  for (const line of lines) replies.push(await client.command(line));
  return replies;
}

/** A new connection, greeted, EHLO'd and (per policy) under TLS. */
async function connect(policy: Policy): Promise<SmtpClient> {
  const { downstream, timeouts, hostname } = policy;
  const client = await SmtpClient.connect({
    host: downstream.host,
    port: downstream.port,
    connectTimeout: timeouts.downstreamConnect,
    commandTimeout: timeouts.downstreamCommand,
  });
  try {
    expect(client.greeting!, 2, 'greeting');
    expect(await client.ehlo(hostname), 2, 'EHLO');
    if (downstream.starttls !== 'off') {
      if (client.extensions.has('STARTTLS')) {
        expect(await client.starttls(downstream.host, downstream.tlsVerify), 2, 'STARTTLS');
        expect(await client.ehlo(hostname), 2, 'EHLO after STARTTLS');
      } else if (downstream.starttls === 'required') {
        throw new SmtpClientError('downstream does not offer STARTTLS and the policy requires it', 'ETLS');
      }
    }
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}

/** A downstream answer that ends the session set-up (not a reply to the client's own command). */
function expect(reply: SmtpReply, cls: number, step: string): void {
  if (Math.floor(reply.code / 100) !== cls) {
    throw new DownstreamRefused(reply, step);
  }
}

export class DownstreamRefused extends Error {
  override name = 'DownstreamRefused';
  constructor(
    readonly reply: SmtpReply,
    readonly step: string,
  ) {
    super(`downstream answered ${step} with ${reply.code} ${reply.lines.join(' ')}`);
  }
}

const XTEXT_UNAVAILABLE = '[UNAVAILABLE]';

/** XFORWARD lines carrying what the downstream advertised, each within 512 characters. */
export function xforwardCommands(identity: ClientIdentity, offered: Set<string>): string[] {
  const forwarded = identity.forwarded ?? new Map<string, string>();
  const own: Record<string, string> = {
    NAME: XTEXT_UNAVAILABLE,
    ADDR: identity.addr.includes(':') ? `IPV6:${identity.addr}` : identity.addr,
    PORT: String(identity.port),
    PROTO: identity.proto,
    HELO: identity.helo ? encodeXtext(identity.helo) : XTEXT_UNAVAILABLE,
  };
  const attributes: string[] = [];
  for (const key of ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE']) {
    if (!offered.has(key)) continue;
    const value = forwarded.size ? forwarded.get(key) : own[key];
    if (value !== undefined) attributes.push(`${key}=${value}`);
  }
  const lines: string[] = [];
  let line = 'XFORWARD';
  for (const attribute of attributes) {
    if (line.length + 1 + attribute.length > XFORWARD_LINE_MAX - 2 && line !== 'XFORWARD') {
      lines.push(line);
      line = 'XFORWARD';
    }
    line += ' ' + attribute;
  }
  if (line !== 'XFORWARD') lines.push(line);
  return lines;
}
