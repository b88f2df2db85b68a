// What a recipient does by themselves with a message held for them (the page behind a digest link
// calls these): ask an admin to release it, or release their own copy where quarantine.rights
// allows. Each acts on one item for one recipient, who must be one of its internal envelope
// recipients; a release delivers to that recipient only, through the same release as the CLI (lock,
// once per recipient, history, audit.log), by operator `recipient:ADDRESS`. Both count against the
// recipient's limit (quarantine.requests) in the state backend.
import os from 'node:os';
import type { Logger } from '../observe/log.js';
import type { Policy } from '../policy/schema.js';
import { actionLimiterFor, ActionLimitUnavailable } from '../state/action-limit.js';
import type { StateBackend } from '../state/index.js';
import { escapeControl } from './escape.js';
import { explainSymbols, formatTime, languageFor, WORDS, type Language } from './digest-text.js';
import { sendNotice } from './notify.js';
import { release, deliveredTo, type ReleaseResult } from './release.js';
import { holdingFindings, recipientAccess, type RecipientAccess } from './rights.js';
import { checkId, QuarantineError, type QuarantineMetadata, type QuarantineStore } from './store.js';

/** What recipient actions need: the store, the policy, the state backend (the limit) and a log. */
export interface RecipientContext {
  store: QuarantineStore;
  policy: Policy;
  state: StateBackend;
  log: Logger;
}

/**
 * Why a recipient's action was refused. not-recipient: the address is not an internal recipient of
 * the item (the page says only "not found": nothing about someone else's item); not-allowed: the
 * item's category forbids it; not-held: their copy was released, deleted or has a release in
 * doubt; already-requested; declined: an admin said no to their request; rate-limited (retryInMs);
 * unavailable: the state backend did not answer.
 */
export class RecipientActionError extends Error {
  override name = 'RecipientActionError';
  constructor(
    message: string,
    readonly kind: 'not-recipient' | 'not-allowed' | 'not-held' | 'already-requested' | 'declined' | 'rate-limited' | 'unavailable',
    readonly retryInMs?: number,
  ) {
    super(message);
  }
}

export const REQUEST_EVENT = 'release-requested';
/** An admin's no to a recipient's request: the message stays held, the recipient is told, and may not ask again for it. */
export const DECLINE_EVENT = 'release-declined';

/** The operator name a recipient acts as, in history, audit log and release header. */
export function recipientOperator(recipient: string): string {
  return `recipient:${recipient}`;
}

/** Requests not yet answered: requested, neither delivered to that recipient nor declined since, item not deleted. */
export function pendingRequests(meta: QuarantineMetadata): { recipient: string; at: string; note?: string }[] {
  if (meta.state === 'deleted') return [];
  const delivered = deliveredTo(meta);
  const pending = new Map<string, { recipient: string; at: string; note?: string }>();
  for (const h of meta.history) {
    const recipient = h.recipients?.[0];
    if (!recipient) continue;
    if (h.event === DECLINE_EVENT) pending.delete(recipient.toLowerCase());
    if (h.event !== REQUEST_EVENT) continue;
    if (!delivered.has(recipient.toLowerCase()) && !pending.has(recipient.toLowerCase())) {
      pending.set(recipient.toLowerCase(), { recipient, at: h.at, ...(h.detail ? { note: h.detail } : {}) });
    }
  }
  return [...pending.values()];
}

/** The admin's decline of `recipient`'s request for this item, if there was one (the last). */
export function declinedRequest(meta: QuarantineMetadata, recipient: string): { at: string; by: string; reason?: string } | undefined {
  const h = meta.history.findLast((e) => e.event === DECLINE_EVENT && e.recipients?.[0]?.toLowerCase() === recipient.toLowerCase());
  return h ? { at: h.at, by: h.by, ...(h.detail ? { reason: h.detail } : {}) } : undefined;
}

/** Refuses unless `address` may act on the item now with at least `needed`. */
function checkAccess(policy: Policy, meta: QuarantineMetadata, address: string, needed: 'release' | 'request'): RecipientAccess & { recipient: string } {
  const access = recipientAccess(policy, meta, address);
  if (!access.recipient) throw new RecipientActionError(`${meta.id}: no message held for ${address}`, 'not-recipient');
  if (!access.actionable) {
    const why = { deleted: 'it was deleted', released: 'it was already released to you', 'release-pending': 'a release of it is in progress' }[
      access.reason as 'deleted' | 'released' | 'release-pending'
    ];
    throw new RecipientActionError(`${meta.id}: ${why}`, 'not-held');
  }
  if (access.right === 'none' || (needed === 'release' && access.right !== 'release')) {
    const symbols = access.because.map((b) => b.symbol).join(', ');
    throw new RecipientActionError(
      `${meta.id}: ${needed === 'release' ? 'releasing it yourself' : 'requesting its release'} is not allowed for this message (${access.right}${symbols ? `: ${symbols}` : ''})`,
      'not-allowed',
    );
  }
  return access as RecipientAccess & { recipient: string };
}

async function takeAction(ctx: RecipientContext, recipient: string): Promise<void> {
  const { limit, window } = ctx.policy.quarantine.requests;
  let take;
  try {
    take = await actionLimiterFor(ctx.state).take(recipient, limit, window);
  } catch (err) {
    if (err instanceof ActionLimitUnavailable) {
      throw new RecipientActionError(`the state backend did not answer (${err.message}); try again later`, 'unavailable');
    }
    throw err;
  }
  if (!take.allowed) {
    throw new RecipientActionError(
      `${recipient} made ${take.count} requests or releases within ${Math.round(window / 60_000)} minutes (quarantine.requests.limit); try again in ${Math.ceil(take.resetInMs / 60_000)} minutes`,
      'rate-limited',
      take.resetInMs,
    );
  }
}

/** One request per recipient and item: refused while one is pending, and for good once an admin declined it. */
function refuseRepeatedRequest(meta: QuarantineMetadata, recipient: string): void {
  if (pendingRequests(meta).some((p) => p.recipient.toLowerCase() === recipient.toLowerCase())) {
    throw new RecipientActionError(`${meta.id}: you already asked for its release; an administrator will decide`, 'already-requested');
  }
  const declined = declinedRequest(meta, recipient);
  if (declined) throw new RecipientActionError(`${meta.id}: an administrator declined your request on ${declined.at}`, 'declined');
}

export interface RequestResult {
  meta: QuarantineMetadata;
  /** the admin address told, or null (none configured, or the notice failed: see notifyError) */
  notified: string | null;
  notifyError?: string;
}

/**
 * Records recipient `address`'s request to release item `id` (history event release-requested,
 * audit.log) and mails the admin. Allowed where the item's category is request or release.
 */
export async function requestRelease(ctx: RecipientContext, id: string, address: string, options: { note?: string } = {}): Promise<RequestResult> {
  checkId(id);
  const { store, policy } = ctx;
  const first = await store.get(id);
  const { recipient } = checkAccess(policy, first, address, 'request');
  refuseRepeatedRequest(first, recipient);
  await takeAction(ctx, recipient);
  const operator = recipientOperator(recipient);
  const note = options.note ? escapeControl(options.note.trim()).slice(0, 500) : undefined;
  const lock = await store.lock(id, operator).catch((err: unknown) => {
    if (err instanceof QuarantineError && err.kind === 'locked')
      throw new RecipientActionError(`${id}: an administrator is acting on it right now`, 'not-held');
    throw err;
  });
  let meta: QuarantineMetadata;
  try {
    meta = await store.get(id);
    checkAccess(policy, meta, recipient, 'request');
    refuseRepeatedRequest(meta, recipient);
    meta.history.push({
      at: new Date().toISOString(),
      event: REQUEST_EVENT,
      by: operator,
      host: os.hostname(),
      recipients: [recipient],
      ...(note ? { detail: note } : {}),
    });
    await store.update(meta);
  } finally {
    await store.unlock(lock);
  }
  await store.audit({ action: 'release-request', id, operator, result: 'requested', recipient, note }).catch(() => undefined);
  const admin = policy.quarantine.requests.admin ?? policy.quarantine.notify.admin;
  if (!admin) {
    ctx.log.info({ event: 'release_requested', id, recipient, notified: null }, 'release requested; no admin address to tell (quarantine.requests.admin)');
    return { meta, notified: null };
  }
  const sent = await sendNotice(policy, {
    from: policy.quarantine.digest.from ?? policy.quarantine.notify.from,
    to: admin,
    subject: `[Mailmoat] Release requested by ${recipient}`,
    text: requestNoticeText(policy, meta, recipient, note),
    headers: { 'X-Mailmoat-Request': id },
  });
  if ('error' in sent) {
    ctx.log.warn({ event: 'release_request_notice_failed', id, recipient, admin, err: sent.error }, 'release requested; the admin notice was not sent');
    return { meta, notified: null, notifyError: sent.error };
  }
  ctx.log.info({ event: 'release_requested', id, recipient, notified: admin, response: sent.response }, 'release requested; admin told');
  return { meta, notified: admin };
}

/** The admin's notice of a request (in English, like the CLI): who, which item, what it is and why it is held, how to release it. */
export function requestNoticeText(policy: Policy, meta: QuarantineMetadata, recipient: string, note?: string): string {
  const why = explainSymbols(
    holdingFindings(policy, meta.findings).map((f) => f.symbol),
    'en',
  );
  const symbols = [...new Set(holdingFindings(policy, meta.findings).map((f) => f.symbol))].join(', ');
  return [
    `${recipient} asks for the release of a held message.`,
    '',
    `Quarantine id: ${meta.id}`,
    `Received:      ${meta.receivedAt}`,
    `Sender:        ${escapeControl(meta.envelope.mailFrom || '<>')}`,
    `From:          ${escapeControl(meta.headers?.from ?? '')}`,
    `Subject:       ${escapeControl(meta.headers?.subject ?? '')}`,
    `Why held:      ${why.join('; ')}${symbols ? ` (${symbols})` : ''}`,
    ...(note ? [`Their note:    ${note}`] : []),
    '',
    ...(policy.quarantine.digest.baseUrl
      ? ['Approve or decline it in the console:', `  ${policy.quarantine.digest.baseUrl}/quarantine/${meta.id}`, '', 'or release it to them with:']
      : ['Release it to them from the console, or with:']),
    `  mailmoat quarantine release ${meta.id} --to ${recipient}`,
    '',
    'or decline (they are told, and the message stays held):',
    `  mailmoat quarantine decline ${meta.id} --recipient ${recipient} --reason '...'`,
    '',
  ].join('\n');
}

/**
 * Releases item `id` to recipient `address` only, where the item's category is release: the CLI's
 * release (lock, once per recipient, history, audit.log) with `to: [address]`, the rights checked
 * again under the item's lock.
 */
export async function releaseOwnCopy(ctx: RecipientContext, id: string, address: string): Promise<ReleaseResult> {
  checkId(id);
  const { store, policy } = ctx;
  const { recipient } = checkAccess(policy, await store.get(id), address, 'release');
  await takeAction(ctx, recipient);
  try {
    const result = await release(store, id, policy, {
      operator: recipientOperator(recipient),
      to: [recipient],
      note: 'released by the recipient',
      guard: (meta) => void checkAccess(policy, meta, recipient, 'release'),
    });
    ctx.log.info({ event: 'recipient_release', id, recipient, result: result.status }, 'a recipient released their copy');
    return result;
  } catch (err) {
    // another release holds the lock, or finished first: the recipient's copy is not theirs to act on now
    if (err instanceof QuarantineError && (err.kind === 'locked' || err.kind === 'state')) throw new RecipientActionError(`${id}: ${err.message}`, 'not-held');
    throw err;
  }
}

export interface DeclineResult {
  meta: QuarantineMetadata;
  /** the recipient told, or null when the notice failed (see notifyError) */
  notified: string | null;
  notifyError?: string;
}

/**
 * An admin declines `recipient`'s pending request for item `id`: recorded under the item's lock
 * (history release-declined, audit.log), the message stays held, and the recipient is told by mail
 * in their language (quarantine.digest.language), with the admin's reason when given. The recipient
 * may not ask again for this message.
 */
export async function declineRequest(
  ctx: Omit<RecipientContext, 'state'>,
  id: string,
  recipient: string,
  options: { operator: string; reason?: string },
): Promise<DeclineResult> {
  checkId(id);
  const { store, policy } = ctx;
  const reason = options.reason ? escapeControl(options.reason.trim()).slice(0, 500) || undefined : undefined;
  const lock = await store.lock(id, options.operator);
  let meta: QuarantineMetadata;
  let asked: string;
  try {
    meta = await store.get(id);
    const pending = pendingRequests(meta).find((p) => p.recipient.toLowerCase() === recipient.toLowerCase());
    if (!pending) throw new QuarantineError(`${id}: no pending release request from ${recipient} (answered already, or never made)`, 'state');
    asked = pending.recipient;
    meta.history.push({
      at: new Date().toISOString(),
      event: DECLINE_EVENT,
      by: options.operator,
      host: os.hostname(),
      recipients: [asked],
      ...(reason ? { detail: reason } : {}),
    });
    await store.update(meta);
  } finally {
    await store.unlock(lock);
  }
  await store.audit({ action: 'release-decline', id, operator: options.operator, result: 'declined', recipient: asked, reason }).catch(() => undefined);
  const language = languageFor(policy, asked);
  const sent = await sendNotice(policy, {
    from: policy.quarantine.digest.from ?? policy.quarantine.notify.from,
    to: asked,
    subject: WORDS[language].declined.subject,
    text: declineNoticeText(language, meta, reason),
    headers: { 'X-Mailmoat-Request': id },
  });
  if ('error' in sent) {
    ctx.log.warn({ event: 'release_decline_notice_failed', id, recipient: asked, err: sent.error }, 'release request declined; the notice was not sent');
    return { meta, notified: null, notifyError: sent.error };
  }
  ctx.log.info({ event: 'release_declined', id, recipient: asked, by: options.operator, response: sent.response }, 'release request declined; recipient told');
  return { meta, notified: asked };
}

/** The recipient's notice of a decline: which message (sender, subject, when), and the admin's reason. */
export function declineNoticeText(language: Language, meta: QuarantineMetadata, reason?: string): string {
  const w = WORDS[language];
  return [
    w.declined.intro,
    '',
    `${w.from}: ${escapeControl(meta.headers?.from ?? meta.envelope.mailFrom) || '<>'}`,
    `${w.subjectLabel}: ${escapeControl(meta.headers?.subject ?? '') || w.noSubject}`,
    `${w.received}: ${formatTime(Date.parse(meta.receivedAt), language)}`,
    ...(reason ? ['', `${w.declined.reason}: ${reason}`] : []),
    '',
  ].join('\n');
}
