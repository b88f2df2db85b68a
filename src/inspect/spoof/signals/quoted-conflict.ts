// SPOOF_THREAD_NAME_CONFLICT: the quoted thread binds the sender's name (any of its written forms) or
// an address written in the display name to an address in another organisation, and binds that name
// nowhere to the sender's own organisation.
import { orgOf } from '../names.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';

export function quotedNameConflict(view: MessageView): Signal | null {
  const { from, fromOrg, senderKeys, nameAddresses, quoted } = view;
  if (!from.address || !quoted.bindings.length) return null;
  const namesake = quoted.bindings.filter((b) => senderKeys.includes(b.name));
  const conflict =
    (namesake.some((b) => orgOf(b.address) === fromOrg) ? undefined : namesake.find((b) => b.address !== from.address)) ??
    quoted.bindings.find((b) => nameAddresses.includes(b.address));
  if (!conflict) return null;
  return {
    symbol: 'SPOOF_THREAD_NAME_CONFLICT',
    detail: `"${from.name}" <${from.address}>: the quoted thread has ${conflict.display ? `"${conflict.display}" ` : ''}<${conflict.address}>`,
  };
}
