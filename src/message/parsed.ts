// What the analyzers read about a message (below both front ends and the analyzers: the gateway, the milter,
// inspect/ and the pipeline share it). The header block is read from the spool and parsed here
// (cheap: every message pays for it); the MIME walk's results (body, leaf kinds) are added by inspect.
import libmime from 'libmime';
import type { Spool } from './spool.js';
import type { Kind } from '../inspect/office/sniff.js';

export interface HeaderField {
  /** lower-case field name */
  name: string;
  /** unfolded, RFC 2047 words decoded */
  value: string;
  /**
   * unfolded, RFC 2047 words as received: address fields are parsed from this, so that a display name
   * that decodes to "Name <addr>" stays display-name text (structure first, then the words)
   */
  raw?: string;
}

export interface Envelope {
  mailFrom: string;
  rcptTo: string[];
}

export interface ClientInfo {
  address: string;
  helo: string;
  /**
   * The client's hostname as the MTA in front verified it (forward-confirmed reverse DNS): Postfix's
   * XFORWARD NAME, or the milter's {client_name}. Absent when unknown or unverified.
   */
  name?: string;
}

/** A verified client name as an MTA passes it on: "unknown", "[UNAVAILABLE]", a bracketed address or a dotless name mean none. */
export function verifiedClientName(value: string | undefined | false): string | undefined {
  const name = (value || '').trim().toLowerCase().replace(/\.$/, '');
  return /^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/.test(name) && !/^\d+(\.\d+){3}$/.test(name) ? name : undefined;
}

export interface InspectedMessage {
  id: string;
  envelope: Envelope;
  client: ClientInfo;
  size: number;
  /** top-level header fields in order */
  headers: HeaderField[];
  /** the header block did not end within MAX_HEADER_BYTES */
  headerTruncated: boolean;
  /** decoded body text and HTML (the message's own text parts), from the MIME pass every message gets */
  text?: string;
  html?: string;
  /** the kind by content of each leaf the Office engine scanned */
  attachmentKinds: Kind[];
  /** password candidates the message's text parts give, nearest first (src/inspect/office/passwords.ts) */
  passwords?: string[];
}

/** Header blocks larger than this are read only this far (Postfix's header_size_limit is 100 KB). */
export const MAX_HEADER_BYTES = 256 * 1024;

export async function parseMessage(spool: Spool, meta: { id: string; envelope: Envelope; client: ClientInfo }): Promise<InspectedMessage> {
  const head = await spool.head(MAX_HEADER_BYTES);
  const end = headerEnd(head);
  const block = head.subarray(0, end === -1 ? head.length : end).toString('utf8');
  return {
    ...meta,
    size: spool.size,
    headers: parseHeaderBlock(block),
    headerTruncated: end === -1 && spool.size > head.length,
    attachmentKinds: [],
  };
}

/** Offset of the empty line that ends the header block (CRLF CRLF, or a bare-LF equivalent). */
function headerEnd(bytes: Buffer): number {
  if (bytes.subarray(0, 2).toString('latin1') === '\r\n' || bytes[0] === 0x0a) return 0;
  const crlf = bytes.indexOf('\r\n\r\n');
  const lf = bytes.indexOf('\n\n');
  if (crlf === -1) return lf === -1 ? -1 : lf + 1;
  return lf === -1 || crlf < lf ? crlf + 2 : lf + 1;
}

/** The header fields of a whole message in memory (a quarantined item): its first MAX_HEADER_BYTES. */
export function headerFieldsOf(bytes: Buffer): HeaderField[] {
  const head = bytes.subarray(0, MAX_HEADER_BYTES);
  const end = headerEnd(head);
  return parseHeaderBlock(head.subarray(0, end === -1 ? head.length : end).toString('utf8'));
}

/** RFC 5322 fields: a continuation line starts with white space; a line without a colon is skipped. */
export function parseHeaderBlock(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of block.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const raw = line
      .slice(colon + 1)
      .replace(/\r?\n[ \t]/g, ' ')
      .trim();
    fields.push({ name, value: decodeWords(raw), raw });
  }
  return fields;
}

function decodeWords(raw: string): string {
  try {
    return libmime.decodeWords(raw);
  } catch {
    return raw;
  }
}
