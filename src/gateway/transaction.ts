// One client transaction (MAIL to the end of DATA, or RSET): its policy snapshot, its downstream
// session, its spool. The policy is fixed at MAIL time so a reload never gives a message half a policy.
import { messageId } from '../observe/id.js';
import { QuarantineWriteError } from '../pipeline.js';
import type { Policy } from '../policy/schema.js';
import { DownstreamRefused, type DownstreamSession } from '../relay/downstream.js';
import { SmtpClientError, type SmtpReply } from '../relay/smtp-client.js';
import { isStorageFull, SpoolDisposedError, type Spool } from '../message/spool.js';

/** Why a transaction ended without a verdict acted on: in the log line it gets. */
export type AbandonReason = 'client_reset' | 'client_gone' | 'shutdown' | 'timeout' | 'downstream_failed';

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
  /** a verdict was acted on, or the transaction was abandoned: nothing more may happen to it */
  done = false;
  /** aborted when the transaction is abandoned: work on its message stops, nothing is quarantined */
  private readonly aborter = new AbortController();
  private abandoning: Promise<void> | undefined;

  constructor(
    readonly policy: Policy,
    readonly policyVersion: string,
  ) {}

  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  get abandonReason(): AbandonReason | undefined {
    return this.aborter.signal.aborted ? (this.aborter.signal.reason as AbandonReason) : undefined;
  }

  /**
   * Ends the transaction without relaying: the downstream transaction is reset (RSET, the connection
   * back to the pool) or, mid-DATA, dropped, never sent `.`; the spool is disposed. Resolves once
   * the spool file is gone. Idempotent: the first reason counts.
   */
  abandon(reason: AbandonReason): Promise<void> {
    this.abandoning ??= (async () => {
      this.done = true;
      this.aborter.abort(reason);
      this.spool?.destroy(new SpoolDisposedError());
      await Promise.all([this.downstream?.reset(), this.spool?.dispose()]);
    })();
    return this.abandoning;
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
  if (isStorageFull(err) || (err instanceof QuarantineWriteError && isStorageFull(err.cause))) {
    return new SmtpError(452, `4.3.1 Insufficient system storage, try again later [${id}]`);
  }
  if (err instanceof QuarantineWriteError) return new SmtpError(451, `4.3.0 Temporary failure storing the message, try again later [${id}]`);
  return new SmtpError(451, `4.3.0 Temporary gateway error, try again later [${id}]`);
}
