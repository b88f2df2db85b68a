// What a text leaf says, and whether it is text at all. A part's headers decide nothing here:
// "plainly text" is judged on the decoded bytes, so a text/plain part that holds a document is
// never waved through on its Content-Type.
import { isAscii } from 'node:buffer';
import libmime from 'libmime';
import libcharset from 'libmime/lib/charset.js';
import { sniff, type Kind } from '../office/sniff.js';

/** How far the control-character test looks (the sniffers look at the head too). */
const HEAD = 64 * 1024;

/**
 * Text a mail client shows as text: no NUL anywhere, next to no C0 control characters in the head
 * (TAB, LF, FF, CR and ESC — ISO-2022-JP shifts with ESC — are text), and nothing the Office
 * engine would type as a document (RTF, MHT, Word XML, a message, ActiveMime base64, a zip...).
 */
export function isPlainText(bytes: Buffer, kind: Kind = sniff(bytes)): boolean {
  return kind === 'other' && looksLikeText(bytes);
}

/** No NUL, next to no control characters: what a client would display as text (whatever the engine makes of it). */
export function looksLikeText(bytes: Buffer): boolean {
  if (bytes.indexOf(0) !== -1) return false;
  const end = Math.min(bytes.length, HEAD);
  let controls = 0;
  for (let i = 0; i < end; i++) {
    const c = bytes[i];
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d && c !== 0x1b) controls++;
    else if (c === 0x7f) controls++;
  }
  return !(controls > 8 && controls * 100 > end);
}

/** A text part's content as a string: format=flowed joined, the charset decoded (UTF-7 refused), LF line ends. */
export function decodeBodyText(bytes: Buffer, charset: string | undefined, flowed: boolean, delSp: boolean): string {
  let content = bytes;
  if (flowed) content = Buffer.from(libmime.decodeFlowed(content.toString('binary'), delSp), 'binary');
  // 7-bit bytes in a charset that extends ASCII (most mail) read as themselves: no decoder needed
  const text = isAscii(content) && ASCII_SUPERSET.test(charset || 'utf-8') ? content.toString('latin1') : libcharset.decode(content, charset || 'utf-8');
  return text.replace(/\r?\n/g, '\n');
}

/** Charsets whose 7-bit bytes are ASCII (not ISO-2022-*, UTF-7 or UTF-16, which give 7-bit bytes other meanings). */
const ASCII_SUPERSET = /^\s*(?:us-?ascii|ascii|utf-?8|iso-?8859-\d{1,2}|windows-125\d|cp125\d|latin-?1)\s*$/i;
