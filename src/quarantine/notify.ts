// The optional notice that a message was quarantined: composed by nodemailer, sent through the
// downstream MTA (quarantine.release.downstream when set) after the client has its 250. It names the
// id, the sender, the subject and why; it never carries the message or its attachments. Recipients
// outside internalDomains never get one (that would be backscatter to forged senders' victims).
import nodemailer, { type SendMailOptions, type Transporter } from 'nodemailer';
import type { Logger } from '../observe/log.js';
import { isInternalAddress } from '../policy/network.js';
import type { Policy } from '../policy/schema.js';
import { releasePolicy } from './release.js';
import type { QuarantineMetadata } from './store.js';

export function noticeRecipients(meta: QuarantineMetadata, policy: Policy): string[] {
  const { notify } = policy.quarantine;
  if (notify.to === 'admin') return notify.admin ? [notify.admin] : [];
  if (notify.to !== 'recipients') return [];
  return meta.envelope.rcptTo.filter((r) => isInternalAddress(policy, r));
}

export function noticeText(meta: QuarantineMetadata): string {
  const symbols = [...new Set(meta.findings.filter((f) => !f.excepted).map((f) => f.symbol))].join(', ');
  return [
    'A message to you was held in quarantine by the mail gateway.',
    '',
    `Quarantine id: ${meta.id}`,
    `Received:      ${meta.receivedAt}`,
    `Sender:        ${meta.envelope.mailFrom || '<>'}`,
    `From:          ${meta.headers?.from ?? ''}`,
    `Subject:       ${meta.headers?.subject ?? ''}`,
    `Why:           ${meta.verdict.reason}${symbols ? ` (${symbols})` : ''}`,
    '',
    'If you expected this message, ask your mail administrator to release it, quoting the id.',
    '',
  ].join('\n');
}

/**
 * The way mail the gateway writes itself (notices, digests, release requests) leaves: nodemailer to
 * quarantine.release.downstream, else the downstream, with its STARTTLS settings.
 */
export function noticeTransport(policy: Policy, options: { pool?: boolean } = {}): Transporter {
  const { host, port, starttls, tlsVerify } = releasePolicy(policy).downstream;
  return nodemailer.createTransport({
    host,
    port,
    secure: false,
    ignoreTLS: starttls === 'off',
    requireTLS: starttls === 'required',
    tls: { rejectUnauthorized: tlsVerify },
    name: policy.hostname,
    ...(options.pool ? { pool: true, maxConnections: 1 } : {}),
  });
}

/**
 * One mail the gateway writes (a notice, a request, a decline), on a connection of its own; marked
 * Auto-Submitted. Resolves with the downstream's answer, or the error as text: never raises, since
 * what it tells about is already recorded.
 */
export async function sendNotice(policy: Policy, mail: SendMailOptions): Promise<{ response: string } | { error: string }> {
  const transport = noticeTransport(policy);
  try {
    const info = await transport.sendMail({ ...mail, headers: { ...(mail.headers as Record<string, string>), 'Auto-Submitted': 'auto-generated' } });
    return { response: info.response ?? '' };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    transport.close();
  }
}

/** Sends the notice; failures are logged, never raised: the message itself is safe in quarantine. */
export async function sendQuarantineNotice(meta: QuarantineMetadata, policy: Policy, log: Logger): Promise<void> {
  const to = noticeRecipients(meta, policy);
  if (!to.length) return;
  const sent = await sendNotice(policy, {
    from: policy.quarantine.notify.from,
    to,
    subject: `[Quarantined] ${(meta.headers?.subject ?? '(no subject)').slice(0, 120)}`,
    text: noticeText(meta),
    headers: { 'X-Mailmoat-Notice': meta.id },
  });
  if ('response' in sent) log.info({ event: 'quarantine_notice', id: meta.id, to, response: sent.response }, 'quarantine notice sent');
  else log.warn({ event: 'quarantine_notice_failed', id: meta.id, to, err: sent.error }, 'quarantine notice not sent');
}
