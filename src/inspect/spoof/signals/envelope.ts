// Header From against the envelope sender. Inbound: SPOOF_(REPLY_)FROM_ENVELOPE_MISMATCH when they are
// in different organisations with nothing to explain it (list or forwarder evidence, DMARC pass, a
// DKIM signature aligned with From, a mailing service the memory has seen sending genuine mail for the
// From domain: SPOOF_KNOWN_SENDING_SERVICE, which holds when DNS is unreachable). Outbound:
// SPOOF_OUTBOUND_FROM_MISMATCH, an internal host sending as someone of another organisation.
import type { MemoryFacts } from '../../../state/thread-memory.js';
import { envelopeToken, type Infrastructure } from '../infrastructure.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';
import type { Authentication } from './authentication.js';

/**
 * The envelope's organisation has sent genuine mail for this From address or domain before: why they
 * differ. Not when SPF contradicts the envelope (anyone can write a mailing service's bounce address).
 */
export function knownSendingService(view: MessageView, facts: MemoryFacts | undefined, infra: Infrastructure): string | null {
  if (!view.orgMismatch || !facts || infra.spf === 'no') return null;
  const token = envelopeToken(view.envOrg);
  if (!facts.infrastructure.address.includes(token) && !facts.infrastructure.domain.includes(token)) return null;
  return `${view.envOrg} sent genuine mail for ${view.fromOrg} before`;
}

export function fromEnvelopeMismatch(view: MessageView, authn: Authentication, service: string | null): Signal | null {
  const { orgMismatch, from, fromOrg, mailFrom, envOrg, isReply } = view;
  if (!orgMismatch || authn.dmarcPass) return null;
  if (authn.evidence) return authn.evidence === service ? { symbol: 'SPOOF_KNOWN_SENDING_SERVICE', detail: `envelope ${mailFrom}: ${service}` } : null;
  return {
    symbol: isReply ? 'SPOOF_REPLY_FROM_ENVELOPE_MISMATCH' : 'SPOOF_FROM_ENVELOPE_MISMATCH',
    detail: `From ${from.address} (${fromOrg}) vs envelope ${mailFrom} (${envOrg}); no list/forwarder evidence${authn.auth ? `, DMARC ${authn.auth.dmarc?.result ?? 'none'}` : ''}${isReply ? '; in a reply' : ''}`,
  };
}

/** An internal host sending as someone of another organisation: infected, or misconfigured. */
export function outboundFromMismatch(view: MessageView): Signal | null {
  if (!view.orgMismatch) return null;
  return {
    symbol: 'SPOOF_OUTBOUND_FROM_MISMATCH',
    detail: `internal client ${view.input.client.address} sends From ${view.from.address} with envelope ${view.mailFrom}`,
  };
}
