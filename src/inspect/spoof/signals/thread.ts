// A reply to a thread the organisation sent (remembered by Message-ID): from one of its participants
// (SPOOF_THREAD_PARTICIPANT, the genuine-reply bonus, only when the envelope backs the From up), from
// an outsider (SPOOF_THREAD_OUTSIDER), or from an outsider carrying a participant's name or address
// (SPOOF_THREAD_IMPERSONATION). A participant's name is any written form of it: a key the thread
// recorded, or a form the memory has seen with the participant's address ("長谷川 健太" and
// "Kenta Hasegawa" are one person once one address was seen with both).
import type { MemoryFacts, ThreadPerson } from '../../../state/thread-memory.js';
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
  return {
    symbol: 'SPOOF_THREAD_OUTSIDER',
    detail: `reply to our thread from ${from.address}, who was not in it (${people
      .map((p) => p.address)
      .slice(0, 5)
      .join(', ')})`,
  };
}
