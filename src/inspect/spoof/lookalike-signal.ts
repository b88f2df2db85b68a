// SPOOF_LOOKALIKE_DOMAIN / SPOOF_REPLY_LOOKALIKE_DOMAIN: the From (or Reply-To) domain imitates an
// internal domain or a known correspondent's (./lookalike.ts). Never for a sender that is itself
// internal, a known correspondent, a mail provider, or trusted by the policy: two real companies
// with close names that both write to us are two correspondents, not an impostor.
import type { HeaderField } from '../../message/parsed.js';
import type { Policy } from '../../policy/schema.js';
import type { ThreadMemory } from '../../state/thread-memory.js';
import { knownDomains, type KnownDomains } from './known-domains.js';
import { LookalikeIndex, parseDomain, targetOf, type LookalikeMatch } from './lookalike.js';
import { MAIL_PROVIDERS } from './mail-providers.js';
import { parseMailboxes } from './names.js';
import type { SpoofSymbol } from './symbols.js';
import { domainOf } from '../../policy/network.js';

export interface LookalikeInput {
  headers: HeaderField[];
  /** the header From address (lower case) */
  from: string;
  /** a reply marker: the weight is higher in a reply */
  isReply: boolean;
  policy: Policy;
  memory?: ThreadMemory;
}

/** The policy's own domains as targets, built once per list of internal domains. */
const internalIndexes = new Map<string, LookalikeIndex>();
function internalIndex(policy: Policy): LookalikeIndex {
  const key = policy.network.internalDomains.join(',');
  let index = internalIndexes.get(key);
  if (!index) {
    index = new LookalikeIndex();
    for (const d of policy.network.internalDomains) {
      const t = targetOf(d, 'internal');
      if (t) index.add(t);
    }
    if (internalIndexes.size > 8) internalIndexes.clear(); // a few policy reloads' worth
    internalIndexes.set(key, index);
  }
  return index;
}

/** Registrable domains that are never lookalikes as senders: internal, trusted by the policy, mail providers. */
function exempt(policy: Policy, registrable: string, internal: LookalikeIndex): boolean {
  if (internal.has(registrable) || MAIL_PROVIDERS.has(registrable)) return true;
  return policy.spoof.lookalike.trusted.some((d) => targetOf(d, 'internal')?.domain === registrable);
}

/**
 * The way `domain` imitates an internal or known domain, or null. Against internal domains every
 * rule counts. Against correspondents, the two rules that also describe unrelated businesses (the
 * same name under another suffix: a partner's other registration, example.de for example.com; a
 * letter or two apart: with thousands of known names, many a new business is one letter from one of
 * them) count only in a reply, where the sender claims to continue a conversation; the deliberate
 * tricks (look-alike letters, IDN, hyphens, added words, the domain written into another) count in
 * new mail as well.
 */
export function lookalikeOf(domain: string, policy: Policy, known?: KnownDomains, reply = true): LookalikeMatch | null {
  const sender = parseDomain(domain);
  if (!sender) return null;
  const internal = internalIndex(policy);
  if (exempt(policy, sender.registrable, internal) || known?.known(sender.registrable)) return null;
  const own = internal.match(domain);
  if (own) return own;
  return known?.index.match(domain, (t) => !!known?.known(t.domain), { suffix: reply, edit: reply }) ?? null;
}

export async function lookalikeSignals(input: LookalikeInput): Promise<{ symbol: SpoofSymbol; detail: string }[]> {
  const { policy } = input;
  if (!policy.spoof.lookalike.enabled) return [];
  const replyTo = parseMailboxes(input.headers.find((h) => h.name === 'reply-to')?.value).map((m) => m.address);
  const fromDomain = domainOf(input.from);
  const domains = [...new Set([fromDomain, ...replyTo.map(domainOf)].filter(Boolean))];
  if (!domains.length) return [];
  const known = input.memory ? await knownDomains(input.memory) : undefined;
  for (const domain of domains) {
    const m = lookalikeOf(domain, policy, known, input.isReply);
    if (!m) continue;
    const field = domain === fromDomain ? 'From' : 'Reply-To';
    const whose = m.target.origin === 'internal' ? 'an internal domain' : 'a known correspondent';
    return [
      {
        symbol: input.isReply ? 'SPOOF_REPLY_LOOKALIKE_DOMAIN' : 'SPOOF_LOOKALIKE_DOMAIN',
        detail: `${field} domain ${m.sender} imitates ${m.target.domain} (${whose}): ${m.how}${input.isReply ? '; in a reply' : ''}`,
      },
    ];
  }
  return [];
}
