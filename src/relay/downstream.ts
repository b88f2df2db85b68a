// One downstream session per client transaction: connect, EHLO, STARTTLS (per policy), XFORWARD with
// the original client's details, then MAIL/RCPT mirrored one by one and DATA only once the message
// is to be relayed. A message that is not relayed never sees DATA, let alone `.`.
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

export class DownstreamSession {
  private constructor(
    private readonly client: SmtpClient,
    private readonly policy: Policy,
  ) {}

  static async open(policy: Policy, identity: ClientIdentity): Promise<DownstreamSession> {
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
      const offered = client.extensions.get('XFORWARD');
      if (downstream.xforward && offered !== undefined) {
        for (const line of xforwardCommands(identity, new Set(offered.toUpperCase().split(/\s+/)))) {
          expect(await client.command(line), 2, 'XFORWARD');
        }
      }
    } catch (err) {
      client.close();
      throw err;
    }
    return new DownstreamSession(client, policy);
  }

  /** The client's own MAIL or RCPT line, forwarded verbatim; the reply is the downstream's. */
  forward(commandLine: string): Promise<SmtpReply> {
    return this.client.command(commandLine);
  }

  /**
   * DATA, the message, `.`: returns the downstream's reply to DATA when it is not 354, otherwise its
   * reply to the final dot.
   */
  async data(message: Readable): Promise<SmtpReply> {
    const go = await this.client.command('DATA');
    if (go.code !== 354) {
      message.destroy();
      return go;
    }
    return this.client.sendMessage(message, this.policy.timeouts.downstreamData);
  }

  /** Ends a transaction that was not relayed: RSET (nothing was sent after RCPT), then QUIT. */
  async reset(): Promise<void> {
    try {
      await this.client.command('RSET');
    } catch {
      // the session is being closed anyway
    }
    await this.client.quit();
  }

  quit(): Promise<void> {
    return this.client.quit();
  }

  /** Drops the connection at once, without `.`: the downstream discards the transaction. */
  abandon(): void {
    this.client.close();
  }
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
