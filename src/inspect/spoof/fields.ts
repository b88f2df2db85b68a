// Header fields as the spoof checks read them: the decoded value, or for address fields the field as
// received (parseMailboxes reads its structure before decoding its words).
import type { HeaderField } from '../../message/parsed.js';
import { parseMailboxes } from './names.js';

export const header = (headers: HeaderField[], name: string) => headers.find((h) => h.name === name)?.value;

/** An address field as received (RFC 2047 words not decoded): parseMailboxes reads its structure first. */
export const addressField = (headers: HeaderField[], name: string) => {
  const h = headers.find((f) => f.name === name);
  return h && (h.raw ?? h.value);
};

/** Every mailbox of every field with this name. */
export const allMailboxes = (headers: HeaderField[], name: string) => headers.filter((h) => h.name === name).flatMap((h) => parseMailboxes(h.raw ?? h.value));

export function messageIds(value: string | undefined): string[] {
  return value ? [...value.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1]) : [];
}
