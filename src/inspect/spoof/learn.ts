// What a relayed message teaches the thread memory. Outbound: the thread (Message-ID → sender and
// recipients), the recipients' names and addresses and their domains, and how the quoted thread
// writes the people of the recipients' organisations. Inbound mail that was relayed without any
// positive spoof finding: the sender's name keys ↔ address and domain, the other written forms of
// the sender's organisation's people in its quoted thread ("長谷川 健太" <kenta@…> quoted under a
// reply from "Kenta Hasegawa" <kenta@…> binds both forms to the one address), and the infrastructure
// the sender's genuine mail came through (per address and per domain).
import type { Policy } from '../../policy/schema.js';
import type { MemoryUpdate, NameBinding, ThreadMemory, ThreadPerson } from '../../state/thread-memory.js';
import type { ClientInfo, Envelope, HeaderField } from '../../message/parsed.js';
import { domainOf, inNetworks, isInternalDomain } from '../../policy/network.js';
import { listEvidence, RELAYED_BY_OTHERS } from './evidence.js';
import { addressField, allMailboxes, header, messageIds } from './fields.js';
import { infrastructureTokens, type Infrastructure } from './infrastructure.js';
import type { QuotedBinding } from './markers.js';
import { nameForms } from './name-keys.js';
import { orgOf, parseMailboxes, type Mailbox } from './names.js';

/** What the analysis saw that the memory may learn once the message is relayed. */
export interface Observation {
  /** name ↔ address bindings of the quoted thread and its signature blocks */
  quoted: QuotedBinding[];
  /** the infrastructure an inbound message came through (undefined for outbound mail) */
  infrastructure?: Infrastructure;
}

/** Outbound: an internal client sending as an internal domain (envelope sender or header From). */
export function isOutbound(policy: Policy, client: ClientInfo, mailFrom: string, from: string): boolean {
  return (
    inNetworks(policy.network.internalNetworks, client.address) && (isInternalDomain(policy, domainOf(mailFrom)) || isInternalDomain(policy, domainOf(from)))
  );
}

/** A mailbox as the memory keeps it; "X via LIST" <list@…> names X at the list's address, which is not X's. */
const person = (m: Mailbox): ThreadPerson => {
  const forms = nameForms(m.name);
  return { address: m.address, names: forms.via ? [] : forms.keys };
};
const bindingsOf = (people: ThreadPerson[]): NameBinding[] => people.flatMap((p) => (p.address ? p.names.map((name) => ({ name, address: p.address })) : []));

/** The quoted thread's bindings for addresses in these organisations (the correspondent's side of the thread). */
function quotedBindings(observation: Observation | undefined, orgs: Set<string>): NameBinding[] {
  return (observation?.quoted ?? []).filter((b) => orgs.has(orgOf(b.address))).map(({ name, address }) => ({ name, address }));
}

export function learnFromRelayed(
  input: { headers: HeaderField[]; envelope: Envelope; client: ClientInfo; policy: Policy; observation?: Observation },
  findings: { symbol: string; score: number; excepted?: string }[],
): MemoryUpdate | null {
  const { headers, envelope, client, policy, observation } = input;
  if (!policy.spoof.enabled) return null;
  const from = parseMailboxes(addressField(headers, 'from'))[0] ?? { name: '', address: '' };
  if (isOutbound(policy, client, envelope.mailFrom, from.address)) {
    const headerRcpts = ['to', 'cc', 'bcc'].flatMap((n) => allMailboxes(headers, n));
    const to = new Map<string, ThreadPerson>();
    for (const m of headerRcpts) if (m.address) to.set(m.address, person(m));
    for (const r of envelope.rcptTo) if (!to.has(r.toLowerCase())) to.set(r.toLowerCase(), { address: r.toLowerCase(), names: [] });
    const external = [...to.values()].filter((p) => !isInternalDomain(policy, domainOf(p.address)));
    const externalOrgs = new Set(external.map((p) => orgOf(p.address)).filter(Boolean));
    const id = messageIds(header(headers, 'message-id'))[0];
    const sender = from.address ? person(from) : { address: envelope.mailFrom.toLowerCase(), names: [] };
    return {
      threads: id ? [{ messageId: id, record: { from: sender, to: [...to.values()], at: Date.now() } }] : [],
      bindings: [...bindingsOf([sender, ...to.values()]), ...quotedBindings(observation, externalOrgs)],
      addresses: external.map((p) => p.address),
      domains: [...externalOrgs],
      infrastructure: [],
    };
  }
  if (!from.address) return null;
  const service = mailingServiceUpdate(headers, envelope, from, policy, observation, findings);
  if (service !== undefined) return service;
  if (findings.some(suspicious)) return null;
  return inboundUpdate(headers, envelope, from, policy, observation);
}

/**
 * What an admin's "this was the sender" teaches (`mailmoat quarantine release --trust-sender`, the
 * console's release and trust): a held inbound message is learned as a clean one would have been,
 * its spoof findings overruled by the person who released it. The sender's address, names and
 * organisation, and the infrastructure the message came through (as it arrived: the observation
 * kept with the item), so that the sender's next reply the same way is not held again. Null when
 * there is nothing to learn: outbound mail, no From address, list or forwarded mail (its
 * infrastructure is the list's, not the sender's).
 */
export function learnVouched(input: {
  headers: HeaderField[];
  envelope: Envelope;
  client: ClientInfo;
  policy: Policy;
  observation?: Observation;
}): MemoryUpdate | null {
  const { headers, envelope, client, policy, observation } = input;
  if (!policy.spoof.enabled) return null;
  const from = parseMailboxes(addressField(headers, 'from'))[0] ?? { name: '', address: '' };
  if (!from.address || isOutbound(policy, client, envelope.mailFrom, from.address)) return null;
  return inboundUpdate(headers, envelope, from, policy, observation);
}

/** Inbound mail taken as the sender's own: who wrote it, in which names, through which infrastructure. */
function inboundUpdate(headers: HeaderField[], envelope: Envelope, from: Mailbox, policy: Policy, observation: Observation | undefined): MemoryUpdate | null {
  // list and forwarded mail teaches nothing about who the organisation corresponds with
  if (listEvidence(headers, envelope.mailFrom.toLowerCase(), from.address, null)) return null;
  const org = orgOf(from.address);
  const tokens = observation?.infrastructure ? infrastructureTokens(observation.infrastructure) : [];
  return {
    threads: [],
    bindings: [...bindingsOf([person(from)]), ...(org ? quotedBindings(observation, new Set([org])) : [])],
    addresses: [from.address],
    domains: org ? [org] : [],
    // our own domains' infrastructure is the internal network's, not something inbound mail teaches
    infrastructure: tokens.length && !isInternalDomain(policy, domainOf(from.address)) ? [{ address: from.address, domain: org, tokens }] : [],
  };
}

const suspicious = (f: { symbol: string; score: number; excepted?: string }) =>
  !f.excepted && f.score > 0 && (f.symbol.startsWith('SPOOF_') || f.symbol.startsWith('AUTH_'));

/**
 * A mailing service sending for the From domain (a partner's invoices and ticket replies through an
 * ESP): bulk marks (List-Unsubscribe, Precedence: bulk), the envelope (the service's bounce domain)
 * in another organisation, no discussion-list or forwarder marks. It teaches the From domain's
 * infrastructure only (no correspondents, no names: nobody here wrote to it), so that a later reply
 * from a partner's person through the same service is no SPOOF_KNOWN_SENDER_NEW_INFRA and its bounce
 * envelope no mismatch. A DMARC failure under p=none is what such mail shows; anything else suspicious
 * teaches nothing. Learned at once when DNS vouched for the service (SPF pass for its envelope, or a
 * verified DKIM signature of the service or of From); with DNS unreachable only on its second
 * sighting; when SPF contradicts the envelope, never. Returns undefined when the message is not such
 * mail (the ordinary rules apply), null when it is and teaches nothing.
 */
function mailingServiceUpdate(
  headers: HeaderField[],
  envelope: Envelope,
  from: Mailbox,
  policy: Policy,
  observation: Observation | undefined,
  findings: { symbol: string; score: number; excepted?: string }[],
): MemoryUpdate | null | undefined {
  const fromOrg = orgOf(from.address);
  const envOrg = orgOf(envelope.mailFrom);
  const bulk = header(headers, 'list-unsubscribe') !== undefined || /^\s*bulk\s*$/i.test(header(headers, 'precedence') ?? '');
  if (!bulk || !fromOrg || !envOrg || fromOrg === envOrg || isInternalDomain(policy, domainOf(from.address))) return undefined;
  if (headers.some((h) => RELAYED_BY_OTHERS.includes(h.name))) return undefined;
  const infra = observation?.infrastructure;
  if (!infra || infra.spf === 'no' || findings.some((f) => suspicious(f) && f.symbol !== 'AUTH_DMARC_NONE_FAIL')) return null;
  const vouched = infra.spf === 'pass' || infra.dkim.includes(`dkim:${envOrg}`) || infra.dkim.includes(`dkim:${fromOrg}`);
  const tokens = [infra.envelope, ...infra.dkim, ...(vouched ? [infra.network] : [])].filter(Boolean);
  return {
    threads: [],
    bindings: [],
    addresses: [],
    domains: [],
    infrastructure: [{ address: '', domain: fromOrg, tokens, learn: vouched ? 'now' : 'second-sighting' }],
  };
}

/**
 * After a message was relayed (the downstream accepted it): teach the thread memory what it shows.
 * Never throws: a memory that cannot be updated is logged (the message is already delivered).
 */
export async function rememberRelayed(
  headers: HeaderField[],
  meta: { id: string; envelope: Envelope; client: ClientInfo; policy: Policy; observation?: Observation },
  findings: { symbol: string; score: number; excepted?: string }[],
  memory: ThreadMemory,
  log?: { warn(obj: object, msg: string): void },
): Promise<void> {
  try {
    const update = learnFromRelayed({ headers, ...meta }, findings);
    if (update) await memory.update(update, meta.policy.spoof.memoryTtl);
  } catch (err) {
    log?.warn({ event: 'thread_memory_update_failed', id: meta.id, err: (err as Error).message }, 'thread memory not updated');
  }
}
