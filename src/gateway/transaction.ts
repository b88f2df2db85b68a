// One client transaction (MAIL to the end of DATA, or RSET): its policy snapshot, its downstream
// session, its spool. The policy is fixed at MAIL time so a reload never gives a message half a policy.
import { messageId } from '../observe/id.js';
import { QuarantineWriteError } from '../pipeline.js';
import type { Policy } from '../policy/schema.js';
import { DownstreamRefused, type DownstreamSession } from '../relay/downstream.js';
import { SmtpClientError, type SmtpReply } from '../relay/smtp-client.js';
import type { Spool } from '../message/spool.js';

export class Transaction {
  readonly id = messageId();
  readonly started = Date.now();
  readonly recipients: string[] = [];
  /** the client's RCPT lines for the accepted recipients, as sent */
  readonly rcptLines: string[] = [];
  mailLine = '';
  downstream: DownstreamSession | undefined;
  spool: Spool | undefined;
  mailFrom = '';
  done = false;

  constructor(
    readonly policy: Policy,
    readonly policyVersion: string,
  ) {}

  /** Ends the transaction without relaying: the downstream is dropped, never sent `.`. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.downstream?.abandon();
    this.spool?.destroy(new Error('transaction abandoned'));
    void this.spool?.dispose();
  }
}

/** An SMTP reply for the client, as an error smtp-server understands (responseCode + text). */
export class SmtpError extends Error {
  constructor(
    readonly responseCode: number,
    text: string,
  ) {
    super(text);
    this.name = 'SmtpError';
  }

  get reply(): string {
    return `${this.responseCode} ${this.message}`;
  }
}

/** The downstream's reply, passed to the client as it is (421 becomes 451: our client session goes on). */
export function mirror(reply: SmtpReply): SmtpError {
  const [first = '', ...rest] = reply.lines;
  const text = [first, ...rest.map((l) => l.replace(/^[245]\.\d{1,3}\.\d{1,3} /, ''))].join(' ').trim();
  return new SmtpError(reply.code === 421 ? 451 : reply.code, text || 'downstream error');
}

/**
 * Any failure to talk to the downstream is temporary for the client (451 4.4.1): it keeps the
 * message and retries. An unexpected internal error is 451 4.3.0. Never a 250, never a 5xx we
 * did not get from the downstream or the policy.
 */
export function clientErrorFor(err: unknown, id: string): SmtpError {
  if (err instanceof SmtpError) return err;
  if (err instanceof DownstreamRefused) {
    return new SmtpError(451, `4.4.1 Downstream not accepting mail (${err.step}: ${err.reply.code}) [${id}]`);
  }
  if (err instanceof SmtpClientError) return new SmtpError(451, `4.4.1 Downstream unavailable, try again later [${id}]`);
  if (err instanceof QuarantineWriteError) return new SmtpError(451, `4.3.0 Temporary failure storing the message, try again later [${id}]`);
  return new SmtpError(451, `4.3.0 Temporary gateway error, try again later [${id}]`);
}
