// SPOOF_KNOWN_NAME_NEW_ADDRESS: in a reply sent directly (list mail carries many people's many
// addresses), a display name the memory knows with other addresses, from a never-seen address in
// another organisation. Not next to SPOOF_THREAD_IMPERSONATION, which says the same more strongly.
import type { MemoryFacts } from '../../../state/thread-memory.js';
import { orgOf } from '../names.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';
import type { Authentication } from './authentication.js';

export function knownNameNewAddress(view: MessageView, facts: MemoryFacts, authn: Authentication, impersonation: boolean): Signal | null {
  const { from, fromOrg, isReply } = view;
  const known = facts.nameAddresses.filter((a) => a !== from.address);
  if (!isReply || authn.listed || impersonation || facts.addressKnown) return null;
  if (!known.length || facts.nameAddresses.includes(from.address) || known.some((a) => orgOf(a) === fromOrg)) return null;
  return {
    symbol: 'SPOOF_KNOWN_NAME_NEW_ADDRESS',
    detail: `"${from.name}" is known as ${known.slice(0, 3).join(', ')}; now from new address ${from.address}`,
  };
}
