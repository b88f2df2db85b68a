// Is a blob an RFC 5322 message? A mail client opens a forwarded .eml by its header block, not by
// a MIME-Version in its first kilobytes: the block may start after an mbox `From ` line, run for
// many kilobytes of Received: lines, and carry no MIME-Version at all.

/** Field names that say "message" (any two header fields, one of them from this list). */
const MESSAGE_FIELDS = new Set([
  'received',
  'return-path',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'message-id',
  'from',
  'to',
  'cc',
  'date',
  'subject',
  'reply-to',
  'sender',
  'delivered-to',
  'dkim-signature',
  'x-mailer',
  'x-originating-ip',
  'in-reply-to',
  'references',
]);
/** How far into a blob the header block is followed (a longer one is still judged by what came so far). */
const MAX_SCAN = 1024 * 1024;

export function looksLikeMessage(bytes: Buffer): boolean {
  const first = bytes[0];
  // a field name starts with a printable character other than ':'; quick exit for binary and prose
  if (first === undefined || first < 0x21 || first > 0x7e || first === 0x3a) return false;
  const end = Math.min(bytes.length, MAX_SCAN);
  let at = 0;
  let fields = 0;
  let known = 0;
  if (bytes.toString('latin1', 0, 5) === 'From ') at = nextLine(bytes, 0, end);
  while (at < end) {
    const eol = nextLine(bytes, at, end);
    const lineEnd = eol > at && bytes[eol - 1] === 0x0a ? (eol - 1 > at && bytes[eol - 2] === 0x0d ? eol - 2 : eol - 1) : eol;
    if (lineEnd === at) break; // the empty line that ends the header block
    const c = bytes[at];
    if (c === 0x20 || c === 0x09) {
      if (fields === 0) return false;
    } else {
      const colon = fieldColon(bytes, at, lineEnd);
      if (colon === -1) break; // not a header line: the block (if any) ends here
      fields++;
      if (MESSAGE_FIELDS.has(bytes.toString('latin1', at, colon).trimEnd().toLowerCase())) known++;
    }
    at = eol;
  }
  return fields >= 2 && known >= 1;
}

/** Offset just past the next LF (or `end`). */
function nextLine(bytes: Buffer, from: number, end: number): number {
  const lf = bytes.indexOf(0x0a, from);
  return lf === -1 || lf >= end ? end : lf + 1;
}

/** Offset of the colon of a `Field-Name:` line (printable name, blanks allowed before the colon), else -1. */
function fieldColon(bytes: Buffer, from: number, to: number): number {
  let i = from;
  while (i < to && bytes[i] >= 0x21 && bytes[i] <= 0x7e && bytes[i] !== 0x3a) i++;
  if (i === from) return -1;
  while (i < to && (bytes[i] === 0x20 || bytes[i] === 0x09)) i++;
  return i < to && bytes[i] === 0x3a ? i : -1;
}
