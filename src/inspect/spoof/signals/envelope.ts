// Header From against the envelope sender. Inbound: SPOOF_(REPLY_)FROM_ENVELOPE_MISMATCH when they are
// in different organisations with no list/forwarder evidence and no DMARC pass. Outbound:
// SPOOF_OUTBOUND_FROM_MISMATCH, an internal host sending as someone of another organisation.
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';
import type { Authentication } from './authentication.js';

export function fromEnvelopeMismatch(view: MessageView, authn: Authentication): Signal | null {
  const { orgMismatch, from, fromOrg, mailFrom, envOrg, isReply } = view;
  if (!orgMismatch || authn.evidence || authn.dmarcPass) return null;
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
