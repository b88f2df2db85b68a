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

/** What a trust taught the thread memory (kept in the item's sender-trusted history entry). */
export interface TrustedServers {
  /** the sender whose infrastructure is known (the From address) */
  address: string;
  /** the organisation the infrastructure was learned for too */
  domain?: string;
  /** net:…, env:…, dkim:…, host:… */
  tokens: string[];
}

/** "bob@partner.example and partner.example now known through net:…, env:…" (or "no longer known"), for the history and the CLI. */
export function describeTrust(t: TrustedServers, known: boolean): string {
  return `${t.address}${t.domain ? ` and ${t.domain}` : ''} ${known ? 'now' : 'no longer'} known through ${t.tokens.join(', ')}`;
}

/** The trust given through this item and not taken back since, if any. */
export function currentTrust(meta: QuarantineMetadata): TrustedServers | undefined {
  const last = meta.history.findLast((h) => h.event === 'sender-trusted' || h.event === 'sender-untrusted');
  return last?.event === 'sender-trusted' ? last.trusted : undefined;
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

export async function trustSender(store: QuarantineStore, id: string, policy: Policy, memory: ThreadMemory, operator: string): Promise<TrustedServers> {
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
    const trusted: TrustedServers = {
      address: infrastructure.address,
      ...(infrastructure.domain ? { domain: infrastructure.domain } : {}),
      tokens: infrastructure.tokens,
    };
    meta.history.push({
      at: new Date().toISOString(),
      event: 'sender-trusted',
      by: operator,
      host: os.hostname(),
      detail: describeTrust(trusted, true),
      trusted,
    });
    await store.update(meta);
    await store
      .audit({ action: 'trust-sender', id, operator, result: 'trusted', sender: trusted.address, domain: trusted.domain, tokens: trusted.tokens })
      .catch(() => undefined);
    return trusted;
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
export async function untrustSender(store: QuarantineStore, id: string, memory: ThreadMemory, operator: string): Promise<TrustedServers> {
  checkId(id);
  const lock = await store.lock(id, operator);
  try {
    const meta = await store.get(id);
    const trusted = currentTrust(meta);
    if (!trusted) throw new QuarantineError(`${id}: no sender is trusted through it (no release --trust-sender, or already taken back)`, 'state');
    await memory.forgetInfrastructure({ address: trusted.address, domain: trusted.domain ?? '', tokens: trusted.tokens }).catch((err: unknown) => {
      throw new QuarantineError(`${id}: the thread memory could not be changed (${(err as Error).message}): nothing forgotten; try again`, 'io');
    });
    meta.history.push({ at: new Date().toISOString(), event: 'sender-untrusted', by: operator, host: os.hostname(), detail: describeTrust(trusted, false) });
    await store.update(meta);
    await store
      .audit({ action: 'untrust-sender', id, operator, result: 'untrusted', sender: trusted.address, domain: trusted.domain, tokens: trusted.tokens })
      .catch(() => undefined);
    return trusted;
  } finally {
    await store.unlock(lock);
  }
}
