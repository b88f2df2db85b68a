// Identities as mail shows them: addresses (mailboxes parsed structure first), display names normalised so that "Smith, Bob",
// "Dr. Bob Smith", "BOB SMITH" and full-width "Ｂｏｂ\u3000Ｓｍｉｔｈ" (ideographic space) are one person, and organisational
// domains from the public suffix list (tldts: a maintained PSL snapshot, no network, no I/O).
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

const TITLES = new Set([
  'mr',
  'mrs',
  'ms',
  'miss',
  'dr',
  'prof',
  'sir',
  'madam',
  'herr',
  'frau',
  'hr',
  'fr',
  'm',
  'mme',
  'mlle',
  'sr',
  'sra',
  'srta',
  'dott',
  'dottssa',
  'ing',
  'dipl',
  'mag',
  'jr',
  'sr',
  'phd',
  'md',
  'esq',
  'san',
  'sama',
  'kun',
  'chan',
  'sensei',
]);
const CJK_HONORIFICS = /(様|さま|さん|殿|先生|御中|君|くん|ちゃん|先生|女士|先生|老师|님|씨)$/u;
/** Names that say nothing about a person: a role or a product. */
const GENERIC = new Set([
  'info',
  'support',
  'admin',
  'administrator',
  'noreply',
  'no reply',
  'no-reply',
  'donotreply',
  'service',
  'customer service',
  'sales',
  'help',
  'helpdesk',
  'team',
  'office',
  'contact',
  'newsletter',
  'news',
  'notifications',
  'notification',
  'mailer daemon',
  'postmaster',
  'webmaster',
  'billing',
  'accounts',
  'marketing',
  'hr',
  'it',
  'security',
  'root',
  'system',
  'alert',
  'alerts',
  'updates',
  'user',
  'unknown',
  'undisclosed recipients',
  'me',
  'you',
]);
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/**
 * One key per person: NFKC (full-width forms), no diacritics, lower case, "Last, First" reordered,
 * titles and honorifics dropped, parentheticals ("(Sales)", "(NPA)") and quotes removed, tokens sorted.
 * CJK names lose their spaces ("山田 太郎" = "山田太郎"). '' when nothing usable is left.
 */
export function normaliseName(raw: string): string {
  let s = raw
    .normalize('NFKC')
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .normalize('NFC')
    .toLowerCase();
  s = s.replace(/["'`‘’“”«»]/g, ' ').replace(/\s*[([{<][^)\]}>]*[)\]}>]\s*/g, ' ');
  s = s.replace(/\S+@\S+/g, ' '); // an address written into the name is judged separately
  const comma = s.split(',');
  if (comma.length === 2 && comma[0].trim() && comma[1].trim()) s = `${comma[1]} ${comma[0]}`;
  if (CJK.test(s)) {
    const compact = s.replace(/[^\p{L}\p{N}]+/gu, '').replace(CJK_HONORIFICS, '');
    return compact.length >= 2 ? compact : '';
  }
  const tokens = s
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .filter((t) => !TITLES.has(t));
  const key = tokens.sort().join(' ');
  if (key.length < 3 || GENERIC.has(tokens.join(' '))) return '';
  return key;
}

/** A name distinctive enough to say "this is that person": two tokens, or a CJK name. */
export function isPersonalName(key: string): boolean {
  return !!key && (CJK.test(key) || key.includes(' '));
}

const ADDRESS_IN_TEXT = /[a-z0-9._%+'-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}/gi;

/** Addresses written inside a display name ("bob@partner.example" <x@elsewhere>). */
export function addressesInName(name: string): string[] {
  return [...name.normalize('NFKC').matchAll(ADDRESS_IN_TEXT)].map((m) => m[0].toLowerCase());
}
