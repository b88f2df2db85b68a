// Identities as mail shows them: mailboxes (parsed structure first), addresses written into display
// names, and organisational domains from the public suffix list (tldts: a maintained PSL snapshot,
// no network, no I/O). What a display name says about the person: ./name-keys.ts.
import libmime from 'libmime';
import addressparser from 'nodemailer/lib/addressparser';
import { getDomain } from 'tldts';
import { domainOf } from '../../policy/network.js';

export interface Mailbox {
  /** display name as written, RFC 2047 words decoded; the field's comments follow it in parentheses */
  name: string;
  /** lower-case address; '' when the field carried none */
  address: string;
}

/**
 * Every mailbox of an address header (groups flattened). Never throws. `value` is the field as
 * received (HeaderField.raw): the structure is parsed first (nodemailer's addressparser, the parser
 * mailauth's DMARC reads From with), then the RFC 2047 words of each display name are decoded. So
 * `=?UTF-8?B?...?=` that decodes to `Bob <bob@partner.example>` stays display-name text: it never
 * becomes the sender's address, nor a comment that is dropped. A comment next to a display name
 * (`Bob (bob@partner.example) <x@elsewhere>`), which the parser leaves out, is kept in the name of a
 * single-mailbox field: it is text a mail client shows.
 */
export function parseMailboxes(value: string | undefined): Mailbox[] {
  if (!value) return [];
  // the spoof checks and the thread memory's learning read the same fields of a message several
  // times: parse each field value once (copies out, so no caller shares what another may change)
  let parsed = recentlyParsed.get(value);
  if (!parsed) {
    parsed = parseUncached(value);
    if (recentlyParsed.size >= RECENTLY_PARSED) recentlyParsed.clear();
    recentlyParsed.set(value, parsed);
  }
  return parsed.map((m) => ({ ...m }));
}

/** Field values of the last few messages; emptied when full (a bound, not an eviction policy). */
const recentlyParsed = new Map<string, Mailbox[]>();
const RECENTLY_PARSED = 512;

function parseUncached(value: string): Mailbox[] {
  try {
    const parsed = addressparser(value, { flatten: true }) as { name: string; address?: string }[];
    const comments = parsed.length === 1 ? fieldComments(value).filter((c) => squash(c) !== squash(parsed[0].name ?? '')) : [];
    return parsed
      .map((m) => ({
        name: [decodeText(m.name ?? ''), ...comments.map((c) => `(${decodeText(c)})`)].join(' ').trim(),
        address: (m.address ?? '').trim().toLowerCase(),
      }))
      .filter((m) => m.name || m.address);
  } catch {
    return [];
  }
}

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

function decodeText(text: string): string {
  try {
    return libmime.decodeWords(text).trim();
  } catch {
    return text.trim();
  }
}

/** The comments of an address field (RFC 5322 §3.2.2): outside quoted strings, nested ones inside their outer one. */
function fieldComments(value: string): string[] {
  const comments: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\') {
      if (depth) current += value[i + 1] ?? '';
      i++;
    } else if (quoted) {
      if (c === '"') quoted = false;
    } else if (!depth) {
      if (c === '"') quoted = true;
      else if (c === '(') depth = 1;
    } else if (c === ')' && --depth === 0) {
      comments.push(current.trim());
      current = '';
    } else {
      if (c === '(') depth++;
      current += c;
    }
  }
  if (depth) comments.push(current.trim()); // an unterminated comment runs to the end of the field
  return comments.filter(Boolean);
}

/** Organisational domain (RFC 7489 §3.2 style): registrable domain from the ICANN public suffix list. */
export function orgDomain(domain: string): string {
  const d = domain
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (!d) return '';
  return getDomain(d, { allowPrivateDomains: false }) ?? d;
}

export function orgOf(address: string): string {
  return orgDomain(domainOf(address));
}

const ADDRESS_IN_TEXT = /[a-z0-9._%+'-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}/gi;

/** Addresses written inside a display name ("bob@partner.example" <x@elsewhere>). */
export function addressesInName(name: string): string[] {
  return [...name.normalize('NFKC').matchAll(ADDRESS_IN_TEXT)].map((m) => m[0].toLowerCase());
}
