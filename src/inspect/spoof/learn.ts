// What a relayed message teaches the thread memory. Outbound: the thread (Message-ID → sender and
// recipients), the recipients' names and addresses and their domains. Inbound mail that was relayed
// without any positive spoof finding: the sender's name ↔ address binding and domain.
import type { Policy } from '../../policy/schema.js';
import type { MemoryUpdate, ThreadMemory, ThreadPerson } from '../../state/thread-memory.js';
import type { ClientInfo, Envelope, HeaderField } from '../../message/parsed.js';
import { domainOf, inNetworks, isInternalDomain } from '../../policy/network.js';
import { listEvidence } from './evidence.js';
import { isPersonalName, normaliseName, orgOf, parseMailboxes, type Mailbox } from './names.js';
import { addressField, allMailboxes, header, messageIds } from './view.js';

/** Outbound: an internal client sending as an internal domain (envelope sender or header From). */
export function isOutbound(policy: Policy, client: ClientInfo, mailFrom: string, from: string): boolean {
  return (
    inNetworks(policy.network.internalNetworks, client.address) && (isInternalDomain(policy, domainOf(mailFrom)) || isInternalDomain(policy, domainOf(from)))
  );
}

export function learnFromRelayed(
  input: { headers: HeaderField[]; envelope: Envelope; client: ClientInfo; policy: Policy },
  findings: { symbol: string; score: number; excepted?: string }[],
): MemoryUpdate | null {
  const { headers, envelope, client, policy } = input;
  if (!policy.spoof.enabled) return null;
  const from = parseMailboxes(addressField(headers, 'from'))[0] ?? { name: '', address: '' };
  const person = (m: Mailbox): ThreadPerson => ({ address: m.address, name: normaliseName(m.name) });
  if (isOutbound(policy, client, envelope.mailFrom, from.address)) {
    const headerRcpts = ['to', 'cc', 'bcc'].flatMap((n) => allMailboxes(headers, n));
    const to = new Map<string, ThreadPerson>();
    for (const m of headerRcpts) if (m.address) to.set(m.address, person(m));
    for (const r of envelope.rcptTo) if (!to.has(r.toLowerCase())) to.set(r.toLowerCase(), { address: r.toLowerCase(), name: '' });
    const external = [...to.values()].filter((p) => !isInternalDomain(policy, domainOf(p.address)));
    const id = messageIds(header(headers, 'message-id'))[0];
    const sender = from.address ? person(from) : { address: envelope.mailFrom.toLowerCase(), name: '' };
    return {
      threads: id ? [{ messageId: id, record: { from: sender, to: [...to.values()], at: Date.now() } }] : [],
      bindings: [sender, ...to.values()].filter((p) => p.name && p.address && isPersonalName(p.name)),
      addresses: external.map((p) => p.address),
      domains: [...new Set(external.map((p) => orgOf(p.address)).filter(Boolean))],
    };
  }
  const suspicious = findings.some((f) => !f.excepted && f.score > 0 && (f.symbol.startsWith('SPOOF_') || f.symbol.startsWith('AUTH_')));
  if (suspicious || !from.address) return null;
  // list and forwarded mail teaches nothing about who the organisation corresponds with
  if (listEvidence(headers, envelope.mailFrom.toLowerCase(), from.address, null)) return null;
  const sender = person(from);
  const org = orgOf(from.address);
  return {
    threads: [],
    bindings: sender.name && isPersonalName(sender.name) ? [sender] : [],
    addresses: [from.address],
    domains: org ? [org] : [],
  };
}

/**
 * After a message was relayed (the downstream accepted it): teach the thread memory what it shows.
 * Never throws: a memory that cannot be updated is logged (the message is already delivered).
 */
export async function rememberRelayed(
  headers: HeaderField[],
  meta: { id: string; envelope: Envelope; client: ClientInfo; policy: Policy },
  findings: { symbol: string; score: number; excepted?: string }[],
  memory: ThreadMemory,
  log?: { warn(obj: object, msg: string): void },
): Promise<void> {
  try {
    const update = learnFromRelayed({ headers, envelope: meta.envelope, client: meta.client, policy: meta.policy }, findings);
    if (update) await memory.update(update, meta.policy.spoof.memoryTtl);
  } catch (err) {
    log?.warn({ event: 'thread_memory_update_failed', id: meta.id, err: (err as Error).message }, 'thread memory not updated');
  }
}
