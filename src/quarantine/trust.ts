// "Release and trust the sender": an admin who releases a reply held as a spoof says it was the
// sender's own mail. The thread memory then learns it as it would have learned a clean message (the
// sender's address, names and organisation, and the infrastructure it came through as it arrived),
// so the sender's next reply the same way is not held again. Only after a release, only for inbound
// mail whose observation the item kept, and recorded in the item's history and the audit log with
// exactly what was learned: a mistaken trust can be seen and undone by forgetting those tokens.
import os from 'node:os';
import { learnVouched } from '../inspect/spoof/learn.js';
import { headerFieldsOf } from '../message/parsed.js';
import type { Policy } from '../policy/schema.js';
import type { ThreadMemory } from '../state/thread-memory.js';
import { checkId, QuarantineError, type QuarantineMetadata, type QuarantineStore } from './store.js';

export interface TrustResult {
  id: string;
  /** the sender whose infrastructure is now known (the From address) */
  sender: string;
  /** the organisation the infrastructure was learned for too */
  domain?: string;
  /** what was learned: net:…, env:…, dkim:…, host:… */
  tokens: string[];
}

/** What trusting item `meta` teaches (or taught): the vouched update's infrastructure, or why there is none. */
async function vouchedInfrastructure(store: QuarantineStore, meta: QuarantineMetadata, policy: Policy) {
  if (!meta.observation?.infrastructure) {
    throw new QuarantineError(
      `${meta.id} kept no record of the servers it came through (outbound mail, or held by an older version): nothing to trust`,
      'state',
    );
  }
  const update = learnVouched({
    headers: headerFieldsOf(await store.readMessage(meta.id)),
    envelope: { mailFrom: meta.envelope.mailFrom, rcptTo: meta.envelope.rcptTo },
    client: meta.client,
    policy,
    observation: meta.observation,
  });
  const infrastructure = update?.infrastructure[0];
  if (!update || !infrastructure) {
    throw new QuarantineError(
      `${meta.id}: nothing to learn from it (no From address, mail through a list or forwarder, or From in our own domains): the sender is not trusted`,
      'state',
    );
  }
  return { update, infrastructure };
}

export async function trustSender(store: QuarantineStore, id: string, policy: Policy, memory: ThreadMemory, operator: string): Promise<TrustResult> {
  checkId(id);
  if (!policy.spoof.enabled) throw new QuarantineError(`spoof.enabled is false in the policy: there is no thread memory to teach`, 'usage');
  const lock = await store.lock(id, operator);
  try {
    const meta = await store.get(id);
    if (meta.state !== 'released') {
      throw new QuarantineError(`${id} is ${meta.state}, not released: only a message an admin released is trusted (release it first)`, 'state');
    }
    const { update, infrastructure } = await vouchedInfrastructure(store, meta, policy);
    await memory.update(update, policy.spoof.memoryTtl).catch((err: unknown) => {
      throw new QuarantineError(
        `${id}: the thread memory could not be taught (${(err as Error).message}): nothing learned; try again with mailmoat quarantine trust ${id}`,
        'io',
      );
    });
    const result: TrustResult = {
      id,
      sender: infrastructure.address,
      ...(infrastructure.domain ? { domain: infrastructure.domain } : {}),
      tokens: infrastructure.tokens,
    };
    const detail = `${result.sender}${result.domain ? ` and ${result.domain}` : ''} now known through ${result.tokens.join(', ')}`;
    meta.history.push({
      at: new Date().toISOString(),
      event: 'sender-trusted',
      by: operator,
      host: os.hostname(),
      detail,
      trusted: { address: result.sender, ...(result.domain ? { domain: result.domain } : {}), tokens: result.tokens },
    });
    await store.update(meta);
    await store
      .audit({ action: 'trust-sender', id, operator, result: 'trusted', sender: result.sender, domain: result.domain, tokens: result.tokens })
      .catch(() => undefined);
    return result;
  } finally {
    await store.unlock(lock);
  }
}

/**
 * Takes back a trust given by mistake (`mailmoat quarantine untrust ID`): the tokens the item's
 * trust taught (kept in its history entry) are forgotten for the sender and the organisation, even
 * after the message itself was deleted; genuine mail through them teaches them again. Recorded in
 * the history (sender-untrusted) and the audit log (untrust-sender).
 */
export async function untrustSender(store: QuarantineStore, id: string, memory: ThreadMemory, operator: string): Promise<TrustResult> {
  checkId(id);
  const lock = await store.lock(id, operator);
  try {
    const meta = await store.get(id);
    const last = meta.history.findLast((h) => h.event === 'sender-trusted' || h.event === 'sender-untrusted');
    const trusted = last?.event === 'sender-trusted' ? last.trusted : undefined;
    if (!trusted) throw new QuarantineError(`${id}: no sender is trusted through it (no release --trust-sender, or already taken back)`, 'state');
    await memory.forgetInfrastructure({ address: trusted.address, domain: trusted.domain ?? '', tokens: trusted.tokens }).catch((err: unknown) => {
      throw new QuarantineError(`${id}: the thread memory could not be changed (${(err as Error).message}): nothing forgotten; try again`, 'io');
    });
    const result: TrustResult = { id, sender: trusted.address, ...(trusted.domain ? { domain: trusted.domain } : {}), tokens: trusted.tokens };
    const detail = `${result.sender}${result.domain ? ` and ${result.domain}` : ''} no longer known through ${result.tokens.join(', ')}`;
    meta.history.push({ at: new Date().toISOString(), event: 'sender-untrusted', by: operator, host: os.hostname(), detail });
    await store.update(meta);
    await store
      .audit({ action: 'untrust-sender', id, operator, result: 'untrusted', sender: result.sender, domain: result.domain, tokens: result.tokens })
      .catch(() => undefined);
    return result;
  } finally {
    await store.unlock(lock);
  }
}
