// A reply to a thread the organisation sent (remembered by Message-ID): from one of its participants
// (SPOOF_THREAD_PARTICIPANT, the genuine-reply bonus, only when the envelope backs the From up), from
// an outsider (SPOOF_THREAD_OUTSIDER), or from an outsider carrying a participant's name or address
// (SPOOF_THREAD_IMPERSONATION). A participant's name is any written form of it: a key the thread
// recorded, or a form the memory has seen with the participant's address ("長谷川 健太" and
// "Kenta Hasegawa" are one person once one address was seen with both).
import type { MemoryFacts, ThreadPerson } from '../../../state/thread-memory.js';
import { header } from '../fields.js';
import { sameName } from '../name-keys.js';
import { orgOf } from '../names.js';
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';
import type { Authentication } from './authentication.js';

/** `newInfrastructure`: SPOOF_KNOWN_SENDER_NEW_INFRA fired, so nothing the envelope says backs the From up. */
export function threadMembership(view: MessageView, facts: MemoryFacts, authn: Authentication, newInfrastructure = false): Signal | null {
  if (!facts.threads.length) return null;
  const { from, fromOrg, senderKeys, nameAddresses, orgMismatch } = view;
  const people: ThreadPerson[] = facts.threads.flatMap((t) => [t.from, ...t.to]);
  const participant = people.some((p) => p.address === from.address || orgOf(p.address) === fromOrg);
  if (participant) {
    // the genuine reply bonus needs the envelope (and the infrastructure) to back the From up
    if ((orgMismatch && !authn.evidence && !authn.dmarcPass) || newInfrastructure) return null;
    return { symbol: 'SPOOF_THREAD_PARTICIPANT', detail: `${from.address} took part in the thread (${facts.threads.length} remembered message(s))` };
  }
  const namesake = people.find(
    (p) => sameName(p.names, senderKeys) || nameAddresses.includes(p.address) || (senderKeys.length > 0 && facts.nameAddresses.includes(p.address)),
  );
  if (namesake) {
    return {
      symbol: 'SPOOF_THREAD_IMPERSONATION',
      detail: `reply to our thread as "${from.name}" from ${from.address}; the thread has that person as ${namesake.address}`,
    };
  }
  // the thread went to a mailing list, and this reply came back through that list: any member may answer
  if (throughThreadList(view, people, authn)) return null;
  return {
    symbol: 'SPOOF_THREAD_OUTSIDER',
    detail: `reply to our thread from ${from.address}, who was not in it (${people
      .map((p) => p.address)
      .slice(0, 5)
      .join(', ')})`,
  };
}

/**
 * A list that keeps the poster's From (mailman without DMARC mitigation) relays a member's reply to
 * a thread we sent to the list: the member was never in the thread, the list was. It counts as the
 * list's only when the list's own server brought it: List-Post names a participant of the thread,
 * the envelope is the list's (same organisation), and SPF does not say otherwise (without DNS the
 * envelope is taken at its word, as everywhere else). A forged List-Post from another server fails
 * the envelope or SPF test; a participant's name on a member's address is still impersonation.
 */
function throughThreadList(view: MessageView, people: ThreadPerson[], authn: Authentication): boolean {
  const post = /<mailto:([^>?\s]+@[^>?\s]+)/i.exec(header(view.input.headers, 'list-post') ?? '')?.[1]?.toLowerCase();
  if (!post || !people.some((p) => p.address === post)) return false;
  if (!view.envOrg || view.envOrg !== orgOf(post)) return false;
  const spf = authn.auth?.spf;
  return !spf || spf === 'pass' || spf === 'temperror';
}
