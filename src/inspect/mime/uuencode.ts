// uuencode, as mail clients still decode it: Outlook and Thunderbird show `begin 644 name` … `end`
// blocks inside a plain-text body as attachments, and a part with Content-Transfer-Encoding
// x-uuencode (uuencode, x-uue) is decoded the same way. No maintained npm package decodes blocks
// out of a text (the `uuencode` package only maps a bare payload), so this is the small decoder.
// Lenient like the clients: a short or ragged line decodes what it holds, CR and trailing blanks
// are ignored, and a block without its `end` line runs to the end of the text.

/** A `begin` line: mode (octal) and file name; `begin-base64` is sharutils', which no mail client reads. */
const BEGIN = /^begin[ \t]+[0-7]{1,4}[ \t]+(\S[^\r\n]*?)[ \t]*\r?$/gm;
const BEGIN_AT = /^begin[ \t]+[0-7]{1,4}[ \t]+\S/;
const MAX_BLOCKS = 100;

export interface UuBlock {
  name: string;
  bytes: Buffer;
}

/** Whether the text holds a `begin NNN name` line at all (cheap test before decoding). */
export function hasUuBlock(text: Buffer): boolean {
  let at = text.indexOf('begin');
  while (at !== -1) {
    if ((at === 0 || text[at - 1] === 0x0a) && BEGIN_AT.test(text.toString('latin1', at, Math.min(text.length, at + 32)))) return true;
    at = text.indexOf('begin', at + 5);
  }
  return false;
}

/** Every uuencoded block of a text, in order (at most MAX_BLOCKS). */
export function findUuBlocks(text: Buffer): UuBlock[] {
  if (!hasUuBlock(text)) return [];
  const source = text.toString('latin1');
  const blocks: UuBlock[] = [];
  BEGIN.lastIndex = 0;
  for (let m = BEGIN.exec(source); m && blocks.length < MAX_BLOCKS; m = BEGIN.exec(source)) {
    const start = source.indexOf('\n', m.index);
    if (start === -1) break;
    const { bytes, end } = decodeLines(source, start + 1);
    blocks.push({ name: m[1], bytes });
    BEGIN.lastIndex = end;
  }
  return blocks;
}

/**
 * The body of a part with Content-Transfer-Encoding x-uuencode: its `begin` blocks, or, when an
 * encoder left the `begin` line out, the whole body read as uuencoded lines.
 */
export function decodeUuBody(body: Buffer): UuBlock[] {
  const blocks = findUuBlocks(body);
  if (blocks.length) return blocks;
  return [{ name: '', bytes: decodeLines(body.toString('latin1'), 0).bytes }];
}

/** Decodes lines from `from` up to an `end` line (or the end of the text); returns the bytes and where decoding stopped. */
function decodeLines(source: string, from: number): { bytes: Buffer; end: number } {
  const out: Buffer[] = [];
  let at = from;
  while (at < source.length) {
    let next = source.indexOf('\n', at);
    if (next === -1) next = source.length;
    const line = source.slice(at, next).replace(/[\r \t]+$/, '');
    at = next + 1;
    if (line === 'end') break;
    if (line.length === 0) continue;
    const decoded = decodeLine(line);
    if (decoded) out.push(decoded);
  }
  return { bytes: Buffer.concat(out), end: Math.min(at, source.length) };
}

/** One line: a length character (32 + n, '`' for 0), then n bytes in groups of four characters. */
function decodeLine(line: string): Buffer | null {
  const n = (line.charCodeAt(0) - 32) & 0x3f;
  if (n === 0) return null;
  const out = Buffer.alloc(n);
  const sextet = (i: number) => (i < line.length ? (line.charCodeAt(i) - 32) & 0x3f : 0);
  let o = 0;
  for (let i = 1; o < n; i += 4) {
    const a = sextet(i);
    const b = sextet(i + 1);
    const c = sextet(i + 2);
    const d = sextet(i + 3);
    out[o++] = (a << 2) | (b >> 4);
    if (o < n) out[o++] = ((b & 0x0f) << 4) | (c >> 2);
    if (o < n) out[o++] = ((c & 0x03) << 6) | d;
  }
  return out;
}
