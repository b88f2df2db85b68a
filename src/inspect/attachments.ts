// The MIME walk: every attachment goes to the Office/archive engine (mailparser walks into forwarded
// message/rfc822 parts too, so their attachments arrive here like any other), one at a time, so memory stays at one attachment plus the engine's bounded budgets.
// Passwords for encrypted archives come from the text parts, which mailparser hands over last:
// only attachments that were encrypted and unscannable are kept, and scanned again once the text is in.
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MailParser } from 'mailparser';
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import type { HeaderField } from '../message/parsed.js';
import { findPasswords, sniff, type Kind } from './office/index.js';
import { scanAttachmentOffThread as scanAttachment } from './office/pool.js';
import { OFFICE_SYMBOLS, type OfficeLimits } from './office/types.js';

/** Whether the message can hold attachments at all: a plain text or HTML body cannot. */
export function mayCarryAttachments(headers: HeaderField[]): boolean {
  const type = headers.find((h) => h.name === 'content-type')?.value.toLowerCase() ?? 'text/plain';
  const disposition = headers.find((h) => h.name === 'content-disposition')?.value.toLowerCase() ?? '';
  return !/^\s*text\//.test(type) || disposition.startsWith('attachment');
}

export function officeLimits(policy: Policy): OfficeLimits {
  const { maxDepth, maxEntries, maxBytes, maxRatio, maxPasswordAttempts, timeout } = policy.office;
  return { maxDepth, maxEntries, maxBytes, maxRatio, maxPasswordAttempts, timeoutMs: timeout };
}

interface Attachment {
  bytes: Buffer;
  filename?: string;
  contentType?: string;
  findings: Finding[];
}

/** Scans every attachment of a message (raw bytes as a stream); returns the findings. */
export async function scanMessageParts(source: Readable, policy: Policy): Promise<Finding[]> {
  return (await parseMessageParts(source, policy)).findings;
}

/** The one MIME pass: attachment findings, and the decoded body (text, HTML) for the reply-chain checks. */
export async function parseMessageParts(
  source: Readable,
  policy: Policy,
): Promise<{ findings: Finding[]; text?: string; html?: string; attachmentKinds: Kind[] }> {
  const limits = officeLimits(policy);
  const body: { text?: string; html?: string } = {};
  const attachments: Attachment[] = [];
  const attachmentKinds: Kind[] = [];
  let text = '';
  const findings: Finding[] = [];
  const parser = new MailParser({ skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, checksumAlgo: false, maxHtmlLengthToParse: 2_000_000 });
  const sink = new Writable({
    objectMode: true,
    write(
      part: { type: string; content?: Readable; release?: () => void; filename?: string; contentType?: string; text?: string; html?: string | false },
      _enc,
      done,
    ) {
      if (part.type === 'text') {
        if (part.text) body.text = part.text;
        if (typeof part.html === 'string') body.html = part.html;
        text = [part.text ?? '', typeof part.html === 'string' ? part.html.replace(/<[^>]+>/g, ' ') : ''].join('\n');
        return done();
      }
      if (part.type !== 'attachment' || !part.content) return done();
      collect(part.content, policy.limits.maxMessageSize)
        .then(async (bytes) => {
          part.release?.();
          const name = part.filename ?? 'attachment';
          attachmentKinds.push(sniff(bytes));
          const found = await scanAttachment(bytes, name, part.contentType, [], limits);
          // only what may open with a password from the text is kept until the text is in
          if (found.some(isLocked)) attachments.push({ bytes, filename: name, contentType: part.contentType, findings: found });
          else findings.push(...found);
        })
        .then(() => done(), done);
    },
  });
  try {
    await pipeline(source, parser, sink);
  } catch (err) {
    findings.push({ symbol: OFFICE_SYMBOLS.OFFICE_CORRUPT, score: 0, detail: `MIME structure: ${(err as Error).message}`.slice(0, 200) });
  }
  const passwords = findPasswords(text);
  for (const attachment of attachments) {
    const found = passwords.length
      ? await scanAttachment(attachment.bytes, attachment.filename, attachment.contentType, passwords, limits)
      : attachment.findings;
    findings.push(...found);
  }
  return { findings, ...body, attachmentKinds };
}

function isLocked(f: Finding): boolean {
  return f.symbol === OFFICE_SYMBOLS.ARCHIVE_ENCRYPTED_UNSCANNABLE || f.symbol === OFFICE_SYMBOLS.OFFICE_ENCRYPTED_UNSCANNABLE;
}

/** Reads a part's decoded content, up to `max` bytes (the message itself is already bounded). */
async function collect(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += (chunk as Buffer).length;
    if (length > max) {
      stream.resume();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
