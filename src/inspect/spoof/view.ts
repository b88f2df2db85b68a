// What every reply-chain signal reads about one message, computed once: the sender as header From and
// envelope show it, the reply markers, the quoted thread, the recipients' organisations.
import type { Readable } from 'node:stream';
import type { Policy } from '../../policy/schema.js';
import type { ThreadMemory } from '../../state/thread-memory.js';
import type { Finding } from '../finding.js';
import type { ClientInfo, Envelope, HeaderField } from '../../message/parsed.js';
import type { DNSResolver } from './auth.js';
import { htmlToText, quotedThread, subjectPrefix, type QuotedThread, type SubjectPrefix } from './markers.js';
import { addressesInName, normaliseName, orgOf, parseMailboxes, type Mailbox } from './names.js';

export interface SpoofInput {
  headers: HeaderField[];
  /** decoded body text and HTML (undefined when the body was not parsed) */
  text?: string;
  html?: string;
  envelope: Envelope;
  client: ClientInfo;
  /** the findings of the other analyzers (macro, unscannable archive boosters) */
  findings: Finding[];
  policy: Policy;
  /** thread/correspondent memory; undefined: no memory here (e.g. `scan` without state) */
  memory?: ThreadMemory;
  /** the state backend's fail mode (for STATE_FAIL_CLOSED) */
  failMode?: 'open' | 'closed';
  /** DNS for authentication; default: the system resolver with policy.spoof.dnsTimeout and a cache */
  resolver?: DNSResolver;
  /** the raw message, for DKIM; without it authentication is skipped */
  raw?: () => Readable | Buffer;
}

export interface MessageView {
  input: SpoofInput;
  /** the first header From mailbox ('' parts when there is none) */
  from: Mailbox;
  /** the envelope sender, lower case */
  mailFrom: string;
  fromOrg: string;
  envOrg: string;
  /** header From and envelope sender in different organisations */
  orgMismatch: boolean;
  prefix: SubjectPrefix | null;
  hasThreadHeaders: boolean;
  /** Message-IDs the message refers to, nearest first (In-Reply-To, then References from the end) */
  referenced: string[];
  quoted: QuotedThread;
  /** reply markers: a reply/forward prefix, thread headers or a quoted thread */
  isReply: boolean;
  /** organisations of the envelope and header recipients */
  rcptOrgs: Set<string>;
  /** the sender's normalised display name */
  senderName: string;
  /** addresses written inside the sender's display name, in another organisation than From */
  nameAddresses: string[];
}

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

export function readMessage(input: SpoofInput): MessageView {
  const { headers, envelope } = input;
  const from = parseMailboxes(addressField(headers, 'from'))[0] ?? { name: '', address: '' };
  const mailFrom = envelope.mailFrom.toLowerCase();
  const fromOrg = orgOf(from.address);
  const envOrg = orgOf(mailFrom);
  const inReplyTo = header(headers, 'in-reply-to');
  const references = header(headers, 'references');
  const prefix = subjectPrefix(header(headers, 'subject'));
  const hasThreadHeaders = inReplyTo !== undefined || references !== undefined;
  const quoted = quotedThread(input.text, input.html ? htmlToText(input.html) : undefined);
  const rcptOrgs = new Set(
    [
      ...envelope.rcptTo,
      ...parseMailboxes(addressField(headers, 'to')).map((m) => m.address),
      ...parseMailboxes(addressField(headers, 'cc')).map((m) => m.address),
    ]
      .map(orgOf)
      .filter(Boolean),
  );
  return {
    input,
    from,
    mailFrom,
    fromOrg,
    envOrg,
    orgMismatch: !!mailFrom && !!from.address && !!fromOrg && !!envOrg && fromOrg !== envOrg,
    prefix,
    hasThreadHeaders,
    referenced: [...messageIds(inReplyTo), ...messageIds(references).reverse()],
    quoted,
    isReply: !!prefix || hasThreadHeaders || quoted.blocks.length > 0,
    rcptOrgs,
    senderName: normaliseName(from.name),
    nameAddresses: addressesInName(from.name).filter((a) => orgOf(a) !== fromOrg),
  };
}
