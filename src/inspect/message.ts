// Parses a spooled message once (mailparser's streaming MailParser, never simpleParser: attachments are
// streamed and released, not buffered) into what the analyzers read.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import libmime from 'libmime';
import { MailParser } from 'mailparser';
import type { Spool } from '../gateway/spool.js';

export interface HeaderField {
  /** lower-case field name */
  name: string;
  /** unfolded, RFC 2047 words decoded */
  value: string;
}

export interface Envelope {
  mailFrom: string;
  rcptTo: string[];
}

export interface ClientInfo {
  address: string;
  helo: string;
}

export interface InspectedMessage {
  id: string;
  envelope: Envelope;
  client: ClientInfo;
  size: number;
  /** top-level header fields in order */
  headers: HeaderField[];
  /** set when the MIME structure could not be fully parsed */
  parseError?: string;
}

export async function parseMessage(
  spool: Spool,
  meta: { id: string; envelope: Envelope; client: ClientInfo },
): Promise<InspectedMessage> {
  const message: InspectedMessage = { ...meta, size: spool.size, headers: [] };
  const parser = new MailParser({ skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, checksumAlgo: false });
  parser.once('headerLines', (lines: { key: string; line: string }[]) => {
    message.headers = lines.map(({ key, line }) => ({ name: key, value: decodeField(line) }));
  });
  const sink = new Writable({
    objectMode: true,
    write(part: { type: string; content?: NodeJS.ReadableStream; release?: () => void }, _enc, done) {
      if (part.type === 'attachment') {
        part.content?.resume();
        part.release?.();
      }
      done();
    },
  });
  try {
    await pipeline(spool.read(), parser, sink);
  } catch (err) {
    message.parseError = (err as Error).message;
  }
  return message;
}

function decodeField(line: string): string {
  const colon = line.indexOf(':');
  const raw = (colon === -1 ? '' : line.slice(colon + 1)).replace(/\r?\n[ \t]/g, ' ').trim();
  try {
    return libmime.decodeWords(raw);
  } catch {
    return raw;
  }
}
