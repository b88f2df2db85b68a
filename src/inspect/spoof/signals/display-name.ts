// SPOOF_DISPLAY_NAME_ADDRESS / _RCPT_DOMAIN: an address written inside the display name, in another
// organisation than the From address; stronger when it names the recipient's own organisation.
import { orgOf } from '../names.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';

export function displayNameAddress(view: MessageView): Signal | null {
  const { nameAddresses, rcptOrgs, from } = view;
  if (!nameAddresses.length) return null;
  const own = nameAddresses.find((a) => rcptOrgs.has(orgOf(a)));
  return own
    ? { symbol: 'SPOOF_DISPLAY_NAME_RCPT_DOMAIN', detail: `display name carries ${own} (the recipient's organisation) but From is ${from.address}` }
    : { symbol: 'SPOOF_DISPLAY_NAME_ADDRESS', detail: `display name carries ${nameAddresses[0]} but From is ${from.address}` };
}
