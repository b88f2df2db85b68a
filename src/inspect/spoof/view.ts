// What every reply-chain signal reads about one message, computed once: the sender as header From and
// envelope show it, the reply markers, the quoted thread, the recipients' organisations.
import type { Readable } from 'node:stream';
import type { Policy } from '../../policy/schema.js';
import type { ThreadMemory } from '../../state/thread-memory.js';
import type { Finding } from '../finding.js';
import type { ClientInfo, Envelope, HeaderField } from '../../message/parsed.js';
import type { DNSResolver } from './auth.js';
import { htmlToText, quotedThread, subjectPrefix, type QuotedThread, type SubjectPrefix } from './markers.js';
import { listEvidence } from './evidence.js';
import { nameForms } from './name-keys.js';
import { addressField, header, messageIds } from './fields.js';
import { addressesInName, orgOf, parseMailboxes, type Mailbox } from './names.js';

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
  /** DNS for authentication; default: the policy's `dns` section (./dns.ts) */
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
  /**
   * the name keys of the sender's display name (./name-keys.ts); [] when the name is "X via LIST" on
   * list mail, whose address is the list's and says nothing about X
   */
  senderKeys: string[];
  /** addresses written inside the sender's display name, in another organisation than From */
  nameAddresses: string[];
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
    senderKeys: senderKeys(input, from, mailFrom),
    nameAddresses: addressesInName(from.name).filter((a) => orgOf(a) !== fromOrg),
  };
}

function senderKeys(input: SpoofInput, from: Mailbox, mailFrom: string): string[] {
  const forms = nameForms(from.name);
  if (forms.via && listEvidence(input.headers, mailFrom, from.address, null)) return [];
  return forms.keys;
}
