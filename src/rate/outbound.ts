// Which messages are outbound (the population the rates watch) and under which subjects they count.
import type { Policy } from '../policy/schema.js';
import { domainOf, inNetworks, isInternalAddress } from '../policy/network.js';
import { subject, type Subject } from './store.js';

export { domainOf, inNetworks, isInternalAddress };

/** The address in a From header value: the last `<...>` or the first bare `local@domain`. */
export function headerFromAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const angle = [...value.matchAll(/<([^<>\s]+@[^<>\s]+)>/g)].at(-1)?.[1];
  const address = angle ?? /[^\s<>",;:()]+@[^\s<>",;:()]+/.exec(value)?.[0];
  return address?.toLowerCase();
}

export interface Outbound {
  subjects: Subject[];
  headerFrom: string | undefined;
  externalRecipients: string[];
  fromMismatch: boolean;
}

/**
 * Outbound: the client is internal (network.internalNetworks; behind Postfix the XFORWARD client)
 * and the envelope sender or the header From is in an internal domain. Undefined otherwise.
 */
export function classify(policy: Policy, client: string, mailFrom: string, rcptTo: string[], headerFromValue: string | undefined): Outbound | undefined {
  if (!inNetworks(policy.network.internalNetworks, client)) return undefined;
  const envelope = mailFrom.toLowerCase();
  const from = headerFromAddress(headerFromValue);
  const envelopeInternal = isInternalAddress(policy, envelope);
  const fromInternal = from !== undefined && isInternalAddress(policy, from);
  if (!envelopeInternal && !fromInternal) return undefined;
  const subjects = new Set<Subject>();
  for (const key of policy.rate.keys) {
    if (key === 'envelopeSender' && envelope) subjects.add(subject('sender', envelope));
    if (key === 'headerFrom' && fromInternal && from !== envelope) subjects.add(subject('from', from));
    if (key === 'headerFrom' && fromInternal && from === envelope && !policy.rate.keys.includes('envelopeSender')) subjects.add(subject('from', from));
    if (key === 'clientIp') subjects.add(subject('ip', client.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')));
  }
  const external = [...new Set(rcptTo.map((r) => r.toLowerCase()).filter((r) => !isInternalAddress(policy, r)))];
  return {
    subjects: [...subjects],
    headerFrom: from,
    externalRecipients: external,
    fromMismatch: Boolean(envelope && from && from !== envelope),
  };
}

/** MAIL time: the subjects a suspension or hold can be checked for before the content is known. */
export function mailSubjects(policy: Policy, client: string, mailFrom: string): Subject[] | undefined {
  if (!inNetworks(policy.network.internalNetworks, client)) return undefined;
  const envelope = mailFrom.toLowerCase();
  if (!isInternalAddress(policy, envelope)) return undefined;
  const subjects = [subject('sender', envelope)];
  if (policy.rate.keys.includes('clientIp')) subjects.push(subject('ip', client.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')));
  return subjects;
}
