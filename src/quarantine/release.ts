// Releasing, deleting and purging quarantined messages: every state change under the item's lock,
// recorded in its metadata and in the audit log.
//
// Release delivers once. Under the lock the item must be `held` (or `--force`); before the first byte
// goes downstream the metadata records a pending release (durably). Then MAIL/RCPT (the original
// lines, ESMTP parameters included), DATA, the release header and the original bytes, `.`. The
// downstream's answer decides: accepted: `released`; refused, or the connection failed before the
// final dot: still `held`, nothing delivered, and the admin is told why. If the process dies, or the
// connection breaks after the final dot, the pending record stays: the downstream may have the
// message, so a later release refuses until the admin checks and says `--force`. Never twice
// without an admin saying so; never lost (the item stays in the store).
import os from 'node:os';
import { Readable } from 'node:stream';
import type { Policy } from '../policy/schema.js';
import { DownstreamPool, DownstreamRefused, DownstreamSession, type ClientIdentity } from '../relay/downstream.js';
import { formatReply, type SmtpReply } from '../relay/smtp-client.js';
import { encodeXtext } from '../relay/xtext.js';
import { checkId, QuarantineError, ulidTime, type QuarantineMetadata, type QuarantineStore } from './store.js';

export interface RecipientResult {
  rcpt: string;
  line: string;
  reply: SmtpReply;
}

export interface ReleaseResult {
  id: string;
  /**
   * released: every recipient accepted; partial: some refused at RCPT, the others delivered;
   * failed: nothing delivered (item still held); unknown: the connection broke after the final dot
   */
  status: 'released' | 'partial' | 'failed' | 'unknown';
  downstream: string;
  recipients: RecipientResult[];
  /** the reply that ended the attempt (MAIL, DATA or the final dot), when there was one */
  reply?: SmtpReply;
  reason: string;
  /** the outcome was delivered but could not be recorded in the metadata */
  recordError?: string;
}

export interface ActorOptions {
  operator: string;
  force?: boolean;
}

export function releaseHeader(policy: Policy, id: string, operator: string, at: Date): Buffer | undefined {
  const name = policy.quarantine.release.header;
  if (!name) return undefined;
  return Buffer.from(`${name}: id=${id}; by=${operator}; at=${at.toISOString()}; host=${os.hostname()}\r\n`, 'utf8');
}

/** The original RCPT lines, or those of the given recipients (which must be original ones). */
export function pickRecipients(meta: QuarantineMetadata, only?: string[]): { rcpt: string; line: string }[] {
  const all = meta.envelope.rcptTo.map((rcpt, i) => ({ rcpt, line: meta.envelope.rcptLines[i] ?? `RCPT TO:<${rcpt}>` }));
  if (!only?.length) return all;
  return only.map((wanted) => {
    const hit = all.find((r) => r.rcpt.toLowerCase() === wanted.toLowerCase());
    if (!hit) {
      throw new QuarantineError(
        `${wanted} is not a recipient of ${meta.id} (its recipients: ${meta.envelope.rcptTo.join(', ') || 'none'}); --to picks among the original recipients`,
        'usage',
      );
    }
    return hit;
  });
}

export async function release(
  store: QuarantineStore,
  id: string,
  policy: Policy,
  /**
   * `note`: why, in the history and the audit log (the gateway releasing on a password mail says
   * which); `guard`: the caller's own condition, checked under the lock on the item as it stands (a
   * recipient's right to release it), throwing to refuse
   */
  options: ActorOptions & { to?: string[]; note?: string; guard?: (meta: QuarantineMetadata) => void },
): Promise<ReleaseResult> {
  checkId(id);
  const lock = await store.lock(id, options.operator);
  try {
    const meta = await store.get(id);
    options.guard?.(meta);
    refuseUnlessReleasable(store, meta, options.force);
    const targets = pickRecipients(meta, options.to);
    refuseSecondDelivery(meta, targets, options.force);
    await store.verify(meta);
    const at = new Date();
    const recipients = targets.map((t) => t.rcpt);
    meta.pendingRelease = { at: at.toISOString(), by: options.operator, host: os.hostname(), pid: process.pid, recipients };
    meta.history.push({
      at: at.toISOString(),
      event: 'release-started',
      by: options.operator,
      host: os.hostname(),
      recipients,
      ...(options.force || options.note ? { detail: [options.force ? 'forced' : '', options.note ?? ''].filter(Boolean).join('; ') } : {}),
    });
    await store.update(meta);

    const result = await deliver(store, meta, targets, policy, releaseHeader(policy, id, options.operator, at));

    const done = new Date().toISOString();
    const delivered = result.recipients.filter((r) => r.reply.code < 300).map((r) => r.rcpt);
    const detail = describe(result);
    if (result.status === 'released' || result.status === 'partial') {
      delete meta.pendingRelease;
      meta.state = 'released';
      meta.history.push({ at: done, event: 'released', by: options.operator, host: os.hostname(), recipients: delivered, detail });
    } else if (result.status === 'failed') {
      delete meta.pendingRelease;
      meta.history.push({ at: done, event: 'release-failed', by: options.operator, host: os.hostname(), recipients, detail });
    } else {
      meta.history.push({ at: done, event: 'release-unknown', by: options.operator, host: os.hostname(), recipients, detail });
    }
    try {
      await store.update(meta);
    } catch (err) {
      result.recordError = `${store.jsonFile(id)}: ${(err as Error).message}`;
    }
    await store
      .audit({
        action: 'release',
        id,
        operator: options.operator,
        result: result.status,
        downstream: result.downstream,
        recipients: result.recipients.map((r) => ({ rcpt: r.rcpt, reply: formatReply(r.reply) })),
        reply: result.reply ? formatReply(result.reply) : undefined,
        reason: result.reason,
        force: options.force || undefined,
        note: options.note,
      })
      .catch(() => undefined);
    return result;
  } finally {
    await store.unlock(lock);
  }
}

function refuseUnlessReleasable(store: QuarantineStore, meta: QuarantineMetadata, force?: boolean): void {
  if (meta.state === 'deleted') {
    const when = meta.history.findLast((h) => h.event === 'deleted');
    throw new QuarantineError(`${meta.id} was deleted${when ? ` by ${when.by} at ${when.at}` : ''}; its message is gone and cannot be released`, 'state');
  }
  if (meta.pendingRelease && !force) {
    const p = meta.pendingRelease;
    throw new QuarantineError(
      `an earlier release of ${meta.id} (by ${p.by}, pid ${p.pid} on ${p.host}, at ${p.at}, to ${p.recipients.join(', ')}) did not record its outcome: ` +
        `the downstream may already have the message. Look for ${meta.headers?.messageId ? `Message-ID ${meta.headers.messageId} or ` : ''}"id=${meta.id}" in the MTA's log, ` +
        `then run release --force to send it again if it is not there (${store.jsonFile(meta.id)})`,
      'state',
    );
  }
}

/**
 * Once per recipient: a recipient the message was delivered to gets it again only with --force. A
 * release to recipients it has not reached yet (the others, after `--to` or a recipient's own
 * release) goes ahead.
 */
function refuseSecondDelivery(meta: QuarantineMetadata, targets: { rcpt: string }[], force?: boolean): void {
  if (meta.state !== 'released' || force) return;
  const delivered = deliveredTo(meta);
  if (!targets.some((t) => delivered.has(t.rcpt.toLowerCase()))) return;
  const last = meta.history.findLast((h) => h.event === 'released');
  throw new QuarantineError(
    `${meta.id} was already released${last ? ` by ${last.by} at ${last.at} to ${(last.recipients ?? []).join(', ')}` : ''}; use --force to deliver it again`,
    'state',
  );
}

/** The recipients (lower-case) a release has delivered the message to. */
export function deliveredTo(meta: QuarantineMetadata): Set<string> {
  const delivered = new Set<string>();
  for (const h of meta.history) if (h.event === 'released') for (const r of h.recipients ?? []) delivered.add(r.toLowerCase());
  return delivered;
}

/** The downstream of the policy (or quarantine.release.downstream), with its TLS/XFORWARD settings. */
export function releasePolicy(policy: Policy): Policy {
  const target = policy.quarantine.release.downstream;
  if (!target) return policy;
  return { ...policy, downstream: { ...policy.downstream, host: target.host, port: target.port } };
}

async function deliver(
  store: QuarantineStore,
  meta: QuarantineMetadata,
  targets: { rcpt: string; line: string }[],
  basePolicy: Policy,
  header: Buffer | undefined,
): Promise<ReleaseResult> {
  const policy = releasePolicy(basePolicy);
  const downstream = `${policy.downstream.host}:${policy.downstream.port}`;
  const base = { id: meta.id, downstream, recipients: [] as RecipientResult[] };
  const pool = new DownstreamPool();
  let session: DownstreamSession | undefined;
  let dotSent = false;
  try {
    const started = await DownstreamSession.start(pool, policy, originalClient(meta), meta.envelope.mailLine);
    session = started.session;
    if (started.reply.code >= 300) {
      await session.reset();
      return { ...base, status: 'failed', reply: started.reply, reason: `the downstream refused MAIL: ${formatReply(started.reply)}` };
    }
    for (const target of targets) base.recipients.push({ ...target, reply: await session.forward(target.line) });
    if (!base.recipients.some((r) => r.reply.code < 300)) {
      await session.reset();
      return { ...base, status: 'failed', reason: 'the downstream refused every recipient' };
    }
    const source = await store.openMessage(meta.id);
    const message = Readable.from(
      (async function* () {
        if (header) yield header;
        for await (const chunk of source) yield chunk as Buffer;
        dotSent = true;
      })(),
    );
    const reply = await session.data(message);
    if (reply.code >= 300) {
      await session.reset();
      return { ...base, status: 'failed', reply, reason: `the downstream refused the message: ${formatReply(reply)}` };
    }
    session.finish();
    const refused = base.recipients.filter((r) => r.reply.code >= 300);
    return refused.length
      ? {
          ...base,
          status: 'partial',
          reply,
          reason: `delivered to ${base.recipients.length - refused.length} of ${base.recipients.length} recipients: ${formatReply(reply)}`,
        }
      : { ...base, status: 'released', reply, reason: `delivered: ${formatReply(reply)}` };
  } catch (err) {
    session?.abandon();
    const message = err instanceof DownstreamRefused ? err.message : `${(err as Error).message}`;
    if (dotSent) {
      return { ...base, status: 'unknown', reason: `the connection to ${downstream} failed after the message was sent, before its reply: ${message}` };
    }
    if (err instanceof QuarantineError) throw err;
    return { ...base, status: 'failed', reason: `${downstream}: ${message}` };
  } finally {
    await pool.closeAll();
  }
}

/** XFORWARD names the client that originally sent the message, so the MTA logs (and judges) it. */
function originalClient(meta: QuarantineMetadata): ClientIdentity {
  const { address, helo } = meta.client;
  const forwarded = new Map<string, string>([
    ['NAME', '[UNAVAILABLE]'],
    ['ADDR', address.includes(':') ? `IPV6:${address}` : address],
    ['PROTO', 'ESMTP'],
    ['HELO', helo ? encodeXtext(helo) : '[UNAVAILABLE]'],
  ]);
  return { forwarded, addr: address, port: 0, helo, proto: 'ESMTP' };
}

function describe(result: ReleaseResult): string {
  const parts = result.recipients.map((r) => `${r.rcpt}: ${formatReply(r.reply)}`);
  if (result.reply) parts.push(`final: ${formatReply(result.reply)}`);
  parts.push(result.reason);
  return `${result.downstream}; ${parts.join('; ')}`;
}

/** Marks the item deleted and removes its message; the metadata stays as the audit record. */
export async function deleteItem(store: QuarantineStore, id: string, options: ActorOptions & { reason?: string }): Promise<QuarantineMetadata> {
  checkId(id);
  const lock = await store.lock(id, options.operator);
  try {
    const meta = await store.get(id);
    if (meta.state === 'deleted') throw new QuarantineError(`${id} is already deleted`, 'state');
    if (meta.pendingRelease && !options.force) {
      throw new QuarantineError(
        `${id} has a release whose outcome is unknown (by ${meta.pendingRelease.by} at ${meta.pendingRelease.at}); check the MTA, then delete --force`,
        'state',
      );
    }
    delete meta.pendingRelease;
    meta.state = 'deleted';
    meta.history.push({
      at: new Date().toISOString(),
      event: 'deleted',
      by: options.operator,
      host: os.hostname(),
      ...(options.reason ? { detail: options.reason } : {}),
    });
    await store.update(meta);
    await store.removeMessage(id);
    await store.audit({ action: 'delete', id, operator: options.operator, result: 'deleted' }).catch(() => undefined);
    return meta;
  } finally {
    await store.unlock(lock);
  }
}

export interface PurgePlan {
  /** items past retention: removed entirely unless dry-run */
  expired: { id: string; receivedAt: string; state?: string }[];
  /** leftovers of writes that never completed (temp files, a message without metadata), over a day old */
  stray: string[];
}

const STRAY_AGE_MS = 24 * 60 * 60 * 1000;

/** What purge would remove: items whose id (its creation time) is older than the retention. */
export async function planPurge(store: QuarantineStore, retention: number, now = Date.now()): Promise<PurgePlan> {
  if (retention <= 0) return { expired: [], stray: await store.strayTempFiles(STRAY_AGE_MS) };
  const cutoff = now - retention;
  const expired: PurgePlan['expired'] = [];
  for (const id of await store.ids()) {
    const time = ulidTime(id);
    if (time >= cutoff) break; // ids are sorted by time
    const meta = await store.get(id).catch(() => undefined);
    expired.push({ id, receivedAt: meta?.receivedAt ?? new Date(time).toISOString(), ...(meta ? { state: meta.state } : {}) });
  }
  return { expired, stray: await store.strayTempFiles(STRAY_AGE_MS) };
}

/** Removes what the plan names; items locked by a release in progress are skipped and reported. */
export async function executePurge(
  store: QuarantineStore,
  plan: PurgePlan,
  operator: string,
): Promise<{ removed: string[]; skipped: { id: string; reason: string }[] }> {
  const removed: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  for (const item of plan.expired) {
    let lock;
    try {
      lock = await store.lock(item.id, operator);
    } catch (err) {
      skipped.push({ id: item.id, reason: (err as Error).message });
      continue;
    }
    try {
      await store.removeItem(item.id);
      removed.push(item.id);
      await store.audit({ action: 'purge', id: item.id, operator, result: 'removed', receivedAt: item.receivedAt, state: item.state }).catch(() => undefined);
    } catch (err) {
      skipped.push({ id: item.id, reason: (err as Error).message });
    } finally {
      await store.unlock(lock);
    }
  }
  const { rm } = await import('node:fs/promises');
  for (const file of plan.stray) await rm(file, { force: true }).catch(() => undefined);
  return { removed, skipped };
}
