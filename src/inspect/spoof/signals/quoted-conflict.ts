// SPOOF_THREAD_NAME_CONFLICT: the quoted thread binds the sender's name (or an address written in the
// display name) to an address in another organisation, and nowhere to the sender's own organisation.
import { isPersonalName, orgOf } from '../names.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';

export function quotedNameConflict(view: MessageView): Signal | null {
  const { from, fromOrg, senderName, nameAddresses, quoted } = view;
  if (!from.address || !quoted.bindings.length) return null;
  const conflict =
    (isPersonalName(senderName) &&
    quoted.bindings.find((b) => b.name === senderName && b.address !== from.address && orgOf(b.address) !== fromOrg) &&
    !quoted.bindings.some((b) => b.name === senderName && orgOf(b.address) === fromOrg)
      ? quoted.bindings.find((b) => b.name === senderName && orgOf(b.address) !== fromOrg)
      : undefined) ?? quoted.bindings.find((b) => nameAddresses.includes(b.address));
  if (!conflict) return null;
  return {
    symbol: 'SPOOF_THREAD_NAME_CONFLICT',
    detail: `"${from.name}" <${from.address}>: the quoted thread has ${conflict.display ? `"${conflict.display}" ` : ''}<${conflict.address}>`,
  };
}
