// SPOOF_KNOWN_SENDER_NEW_INFRA: a reply whose From is a known correspondent (remembered as a
// correspondent or a thread participant, or known by its own genuine mail) but whose infrastructure
// matches nothing that correspondent's or its domain's genuine mail ever came through, with no DMARC
// pass and no verified DKIM signature aligned with From. The "real address, someone else's server"
// hijack: strong on its own. Mail that legitimately travels other paths says so: list and forwarder
// evidence (List-*, Resent-*, ARC pass, SRS) excuses it; a VERP- or BATV-looking envelope or a Sender
// header alone does not (anyone can write those).
import { domainOf, isInternalDomain } from '../../../policy/network.js';
import type { MemoryFacts } from '../../../state/thread-memory.js';
import { inKnownPool, trustedTokens, type Infrastructure } from '../infrastructure.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';
import type { Authentication } from './authentication.js';

const FORGEABLE_ALONE = /^(sender|precedence |VERP envelope|BATV envelope)/;

export function newInfrastructure(view: MessageView, facts: MemoryFacts, authn: Authentication, infra: Infrastructure): Signal | null {
  const { from, isReply, input } = view;
  if (!isReply || !from.address || isInternalDomain(input.policy, domainOf(from.address))) return null;
  const known = [...new Set([...facts.infrastructure.address, ...facts.infrastructure.domain])];
  const participant = facts.threads.some((t) => [t.from, ...t.to].some((p) => p.address === from.address));
  if (!known.length || !(facts.addressKnown || participant || facts.infrastructure.address.length)) return null;
  if (authn.dmarcPass || authn.alignedDkim) return null;
  if (authn.listed && !FORGEABLE_ALONE.test(authn.listed)) return null;
  const current = trustedTokens(infra);
  // a shared-hosting pool (two /24s of one /16 seen already) counts as the sender's network
  if (current.some((t) => known.includes(t)) || inKnownPool(infra.network, facts.infrastructure.domain)) return null;
  const seen = known.slice(0, 4).join(', ');
  return {
    symbol: 'SPOOF_KNOWN_SENDER_NEW_INFRA',
    detail: `${from.address} is known, its genuine mail came through ${seen}; this reply came through ${[infra.network, infra.envelope, ...infra.dkim].filter(Boolean).join(', ') || 'nothing known'}${authn.auth ? `, DMARC ${authn.auth.dmarc?.result ?? 'none'}` : ''}`,
  };
}
