// What kinds of attachment a message carries, by content (the Office engine's sniff(), never the
// name or Content-Type): the rate counters' "Office / macro-capable / archive" messages.
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MailParser } from 'mailparser';
import { isOfficeKind, sniff, type Kind } from '../inspect/office/sniff.js';

/** Kinds of every attachment (mailparser also walks into forwarded message/rfc822 parts). */
export async function attachmentKinds(source: Readable, maxBytes: number): Promise<Kind[]> {
  const kinds: Kind[] = [];
  const parser = new MailParser({ skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, checksumAlgo: false });
  const sink = new Writable({
    objectMode: true,
    write(part: { type: string; content?: Readable; release?: () => void }, _enc, done) {
      if (part.type !== 'attachment' || !part.content) return done();
      read(part.content, maxBytes)
        .then((bytes) => {
          part.release?.();
          kinds.push(sniff(bytes));
        })
        .then(() => done(), done);
    },
  });
  try {
    await pipeline(source, parser, sink);
  } catch {
    // malformed MIME: the inspect stage reports it; count what was typed so far
  }
  return kinds;
}

/** Office documents, macro-capable formats and archives (zip, OLE, RTF, SYLK, MHT, OneNote...). */
export function hasOfficeAttachment(kinds: Kind[]): boolean {
  return kinds.some(isOfficeKind);
}

async function read(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    if (length >= max) continue; // drain
    length += (chunk as Buffer).length;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
