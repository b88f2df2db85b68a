// The recipients' digest: each internal recipient gets one mail listing the messages held for them
// since their last digest (sender, subject, why in plain words, what they may do), each with a
// signed link to the console's recipient page (`${baseUrl}/r/<token>`).
//
// When each recipient last had a digest is kept in the store (`digest.json`), not in the state
// backend: `mailmoat quarantine digest` from cron is a process of its own (the embedded memory
// backend would forget it at exit), and every node sharing the store sees the same record. A run
// holds `digest.lock`, lists the items received in [the recipient's last run, this run's start), and
// records this run's start for each recipient whose mail the downstream accepted; a recipient whose
// mail failed gets those items again next time. The digest is composed with nodemailer and sent
// through quarantine.release.downstream (else the downstream): the MTA behind the gateway.
import type { Transporter } from 'nodemailer';
import { escapeUTF8 } from 'entities';
import { createRecipientToken, readTokenKey } from '../console/tokens.js';
import type { Logger } from '../observe/log.js';
import { isInternalAddress } from '../policy/network.js';
import type { Policy, RecipientRight } from '../policy/schema.js';
import { escapeControl } from './escape.js';
import { explainSymbols, formatTime, languageFor, WORDS, type Language } from './digest-text.js';
import { noticeTransport } from './notify.js';
import { holdingFindings, recipientAccess } from './rights.js';
import { QuarantineError, ulidTime, type QuarantineMetadata, type QuarantineStore } from './store.js';

export const DIGEST_RECORD = 'digest.json';

/** digest.json: the last run's start, and per recipient (lower-case) the start of the last run that reached them (ms). */
export interface DigestRecord {
  lastRun?: number;
  recipients: Record<string, number>;
}

/** One held message in one recipient's digest. */
export interface DigestEntry {
  id: string;
  receivedAt: string;
  sender: string;
  subject: string;
  /** why, in the recipient's language */
  why: string[];
  symbols: string[];
  right: RecipientRight;
  /** `${baseUrl}/r/<token>` */
  link: string;
}

export interface RecipientDigest {
  /** as the items' envelopes have it (the first spelling seen) */
  recipient: string;
  language: Language;
  entries: DigestEntry[];
}

export interface DigestOutcome {
  recipient: string;
  items: number;
  /** sent: the downstream accepted it; failed: not sent (they get these items next time); dry-run */
  status: 'sent' | 'failed' | 'dry-run';
  response?: string;
  error?: string;
}

export interface DigestRun {
  startedAt: number;
  outcomes: DigestOutcome[];
  /** items whose metadata could not be read (named with their file) */
  problems: string[];
  /** the run was skipped: another node or command holds the lock, or a scheduled run was no longer due */
  skipped?: string;
  digests: RecipientDigest[];
}

export interface DigestOptions {
  /** list what would be sent; send nothing, record nothing */
  dryRun?: boolean;
  /** list items received since then (ms) for everyone, whatever their last digest */
  since?: number;
  now?: () => number;
  log?: Logger;
  /** who runs it, for the lock */
  operator?: string;
  /** checked under the lock with the last run's start: false skips the run (a scheduled run another node just did) */
  due?: (lastRun: number | undefined) => boolean;
}

/** What the policy must give for digests: baseUrl and a readable key. Throws QuarantineError('usage') / TokenKeyError naming what is missing. */
export async function digestSettings(policy: Policy): Promise<{ key: Buffer; baseUrl: string }> {
  const { baseUrl, keyFile } = policy.quarantine.digest;
  if (!baseUrl)
    throw new QuarantineError('quarantine.digest.baseUrl is not set: digest links need the address of the console, e.g. https://mail.example.com', 'usage');
  return { key: await readTokenKey(keyFile), baseUrl };
}

export async function readDigestRecord(store: QuarantineStore): Promise<DigestRecord> {
  const value = (await store.readRecord(DIGEST_RECORD)) as Partial<DigestRecord> | undefined;
  const recipients: Record<string, number> = {};
  if (value && typeof value.recipients === 'object' && value.recipients) {
    for (const [k, v] of Object.entries(value.recipients)) if (typeof v === 'number') recipients[k] = v;
  }
  return { ...(typeof value?.lastRun === 'number' ? { lastRun: value.lastRun } : {}), recipients };
}

/**
 * The digests a run starting at `startedAt` would send: per internal recipient, the items held for
 * them (their copy not released, no release in doubt, not deleted) received in [since, startedAt).
 */
export function planDigests(
  items: QuarantineMetadata[],
  policy: Policy,
  record: DigestRecord,
  settings: { key: Buffer; baseUrl: string },
  startedAt: number,
  since?: number,
): RecipientDigest[] {
  const expiresAt = startedAt + policy.quarantine.digest.linkTtl;
  const byRecipient = new Map<string, RecipientDigest>();
  for (const meta of items) {
    const time = ulidTime(meta.id);
    if (time >= startedAt) continue;
    for (const rcpt of new Set(meta.envelope.rcptTo)) {
      const lower = rcpt.toLowerCase();
      if (!isInternalAddress(policy, rcpt) || time < (since ?? record.recipients[lower] ?? 0)) continue;
      const access = recipientAccess(policy, meta, rcpt);
      if (!access.actionable || !access.recipient) continue;
      let digest = byRecipient.get(lower);
      if (!digest) byRecipient.set(lower, (digest = { recipient: access.recipient, language: languageFor(policy, access.recipient), entries: [] }));
      if (digest.entries.some((e) => e.id === meta.id)) continue;
      const symbols = [...new Set(holdingFindings(policy, meta.findings).map((f) => f.symbol))];
      const token = createRecipientToken(settings.key, { id: meta.id, recipient: access.recipient, expiresAt });
      digest.entries.push({
        id: meta.id,
        receivedAt: meta.receivedAt,
        sender: meta.headers?.from || meta.envelope.mailFrom || '<>',
        subject: meta.headers?.subject ?? '',
        why: explainSymbols(symbols, digest.language),
        symbols,
        right: access.right,
        link: `${settings.baseUrl}/r/${token}`,
      });
    }
  }
  return [...byRecipient.values()].sort((a, b) => a.recipient.localeCompare(b.recipient));
}

/** A value from a message, for the text part: control and reordering characters shown escaped, clipped. */
function plain(value: string, max = 200): string {
  const escaped = escapeControl(value);
  return escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
}

/** The same for the HTML part, HTML-escaped too. */
function html(value: string, max = 200): string {
  return escapeUTF8(plain(value, max));
}

/** The digest mail's subject, text and HTML. */
export function composeDigest(digest: RecipientDigest, linksUntil: number): { subject: string; text: string; html: string } {
  const w = WORDS[digest.language];
  const until = formatTime(linksUntil, digest.language);
  const text: string[] = [w.intro(digest.recipient), ''];
  const rows: string[] = [];
  for (const e of digest.entries) {
    const subject = e.subject ? plain(e.subject) : w.noSubject;
    text.push(
      `* ${subject}`,
      `  ${w.from}: ${plain(e.sender)}`,
      `  ${w.received}: ${formatTime(Date.parse(e.receivedAt), digest.language)}`,
      `  ${w.why}: ${e.why.join('; ')}`,
      `  ${w.youCan}: ${w.right[e.right]}`,
      `  ${e.link}`,
      '',
    );
    rows.push(
      '<tr>' +
        `<td style="padding:8px;border-top:1px solid #ddd;vertical-align:top"><b>${e.subject ? html(e.subject) : escapeUTF8(w.noSubject)}</b><br>` +
        `${escapeUTF8(w.from)}: ${html(e.sender)}<br>` +
        `<span style="color:#555">${escapeUTF8(w.received)}: ${escapeUTF8(formatTime(Date.parse(e.receivedAt), digest.language))}</span></td>` +
        `<td style="padding:8px;border-top:1px solid #ddd;vertical-align:top">${e.why.map(escapeUTF8).join('<br>')}</td>` +
        `<td style="padding:8px;border-top:1px solid #ddd;vertical-align:top">${escapeUTF8(w.right[e.right])}<br>` +
        `<a href="${escapeUTF8(e.link)}">${escapeUTF8(w.open)}</a></td>` +
        '</tr>',
    );
  }
  text.push(w.footer(until), '');
  const page = [
    `<!doctype html><html lang="${digest.language}"><head><meta charset="utf-8"><title>${escapeUTF8(w.subject(digest.entries.length))}</title></head>`,
    '<body style="font-family:sans-serif;font-size:14px;color:#222">',
    `<p>${escapeUTF8(w.intro(digest.recipient))}</p>`,
    '<table style="border-collapse:collapse;width:100%">',
    `<tr><th style="text-align:left;padding:8px">${escapeUTF8(w.subjectLabel)}</th><th style="text-align:left;padding:8px">${escapeUTF8(w.why)}</th>` +
      `<th style="text-align:left;padding:8px">${escapeUTF8(w.youCan)}</th></tr>`,
    ...rows,
    '</table>',
    `<p style="color:#555">${escapeUTF8(w.footer(until))}</p>`,
    '</body></html>',
  ];
  return { subject: w.subject(digest.entries.length), text: text.join('\n'), html: page.join('\n') };
}

/**
 * One digest run: every internal recipient with held items since their last digest gets one mail.
 * Throws (QuarantineError usage / TokenKeyError) when the policy lacks baseUrl or a usable key;
 * a mail the downstream refuses is an outcome (`failed`), not a throw.
 */
export async function sendDigests(store: QuarantineStore, policy: Policy, options: DigestOptions = {}): Promise<DigestRun> {
  const now = options.now ?? Date.now;
  const settings = await digestSettings(policy);
  const lock = options.dryRun ? undefined : await store.lockDigest(options.operator ?? 'digest');
  try {
    const record = await readDigestRecord(store);
    const startedAt = now();
    if (options.due && !options.due(record.lastRun)) return { startedAt, outcomes: [], problems: [], skipped: 'not due', digests: [] };
    const { items, problems } = await store.list(options.since);
    const digests = planDigests(items, policy, record, settings, startedAt, options.since);
    const run: DigestRun = { startedAt, outcomes: [], problems: problems.map((p) => p.message), digests };
    if (options.dryRun) {
      run.outcomes = digests.map((d) => ({ recipient: d.recipient, items: d.entries.length, status: 'dry-run' }));
      return run;
    }
    const transport = digests.length ? noticeTransport(policy, { pool: true }) : undefined;
    try {
      for (const digest of digests) {
        const outcome = await sendOne(transport!, policy, digest, startedAt + policy.quarantine.digest.linkTtl);
        run.outcomes.push(outcome);
        options.log?.[outcome.status === 'sent' ? 'info' : 'warn'](
          { event: 'digest', recipient: digest.recipient, items: outcome.items, status: outcome.status, response: outcome.response, err: outcome.error },
          outcome.status === 'sent' ? 'digest sent' : 'digest not sent',
        );
        if (outcome.status === 'sent') {
          record.recipients[digest.recipient.toLowerCase()] = startedAt;
          await store.writeRecord(DIGEST_RECORD, record);
        }
      }
    } finally {
      transport?.close();
    }
    record.lastRun = startedAt;
    await store.writeRecord(DIGEST_RECORD, record);
    return run;
  } finally {
    if (lock) await store.unlock(lock);
  }
}

async function sendOne(transport: Transporter, policy: Policy, digest: RecipientDigest, linksUntil: number): Promise<DigestOutcome> {
  const mail = composeDigest(digest, linksUntil);
  try {
    const info = (await transport.sendMail({
      from: policy.quarantine.digest.from ?? policy.quarantine.notify.from,
      to: digest.recipient,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      headers: { 'Auto-Submitted': 'auto-generated', 'X-Mailmoat-Digest': String(digest.entries.length) },
    })) as { response?: string; rejected?: unknown[] };
    if (info.rejected?.length) return { recipient: digest.recipient, items: digest.entries.length, status: 'failed', error: `refused: ${info.response ?? ''}` };
    return { recipient: digest.recipient, items: digest.entries.length, status: 'sent', response: info.response };
  } catch (err) {
    return { recipient: digest.recipient, items: digest.entries.length, status: 'failed', error: (err as Error).message };
  }
}
