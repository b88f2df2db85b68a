// What a blob is, by its bytes only: never by name or Content-Type (research §3.1 order).
// OneNote is tested before zip (a .one embedding a .docx passes an end-of-central-directory test).
import { decodeText } from './c-util.js';
import { looksLikeMessage } from '../mime/message-sniff.js';
import { isProgramKind, sniffContainerHead, sniffContainerTail, type ContainerKind } from './sniff-containers.js';

export type Kind =
  | 'cfb' // OLE2 compound file: .doc/.xls/.ppt, vbaProject.bin, encrypted OOXML, OLE objects
  | 'onenote'
  | 'lnk'
  | 'zip' // zip and OOXML (OOXML = zip with [Content_Types].xml, decided by the zip scanner)
  | 'rtf'
  | 'sylk'
  | 'word2003' // Word 2003 XML (WordprocessingML 2003)
  | 'flatopc' // Flat OPC (pkg:package) XML
  | 'mht' // MHTML / "Single File Web Page" (Word saves macro documents as MHT with ActiveMime parts)
  | 'activemime' // ActiveMime (editdata.mso), raw or base64
  | 'message' // an RFC 5322 message (a forwarded .eml): walked by the MIME walker
  | 'tnef' // TNEF (winmail.dat, application/ms-tnef)
  | ContainerKind // gzip, tar, 7z, RAR, disk images, PE ... (sniff-containers.ts)
  | 'other';

const CFB = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const ONENOTE = Buffer.from([0xe4, 0x52, 0x5c, 0x7b, 0x8c, 0xd8, 0xa7, 0x4d, 0xae, 0xb1, 0x53, 0x78, 0xd0, 0x29, 0x96, 0xd3]);
const LNK = Buffer.from([0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46]);
const ACTIVEMIME = Buffer.from('ActiveMime', 'latin1');
const ACTIVEMIME_B64 = 'QWN0aXZlTWltZQ';
const TNEF = Buffer.from([0x78, 0x9f, 0x3e, 0x22]);
const HEAD = 64 * 1024;

function startsWith(bytes: Buffer, magic: Buffer, at = 0): boolean {
  return bytes.length >= at + magic.length && bytes.compare(magic, 0, magic.length, at, at + magic.length) === 0;
}

/** Offset after a UTF-8 BOM and ASCII whitespace. */
function skipBomAndSpace(bytes: Buffer): number {
  let i = startsWith(bytes, Buffer.from([0xef, 0xbb, 0xbf])) ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
  return i;
}

/** Zip local header, empty archive, or spanned/split markers followed by a local header. */
function isZipMagic(bytes: Buffer): boolean {
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) return false;
  const sig = bytes.readUInt32LE(0);
  if (sig === 0x04034b50 || sig === 0x06054b50) return true;
  // PK\x07\x08 (spanned) or PK00 (spanned, single segment) then a local header
  if ((sig === 0x08074b50 || sig === 0x30304b50) && bytes.length >= 8 && bytes.readUInt32LE(4) === 0x04034b50) return true;
  return false;
}

/** An end-of-central-directory record near the end (zip with prepended data, e.g. self-extracting). */
function hasZipEocd(bytes: Buffer): boolean {
  const from = Math.max(0, bytes.length - 22 - 65535);
  for (let i = bytes.length - 22; i >= from; i--) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 0x05 && bytes[i + 3] === 0x06) {
      const commentLen = bytes.readUInt16LE(i + 20);
      if (i + 22 + commentLen === bytes.length) {
        const cdSize = bytes.readUInt32LE(i + 12);
        const entries = bytes.readUInt16LE(i + 10);
        return entries > 0 && cdSize > 0 && cdSize <= i;
      }
    }
  }
  return false;
}

export function sniff(bytes: Buffer): Kind {
  if (startsWith(bytes, CFB)) return 'cfb';
  if (startsWith(bytes, ONENOTE)) return 'onenote';
  if (startsWith(bytes, LNK)) return 'lnk';
  if (startsWith(bytes, TNEF)) return 'tnef';
  if (isZipMagic(bytes)) return 'zip';
  const container = sniffContainerHead(bytes);
  if (container) return container;
  const start = skipBomAndSpace(bytes);
  // Word opens anything starting '{\rt' as RTF ('{\rtf1', '{\rtx', '{\rt0' ...); tolerate a BOM
  if (bytes.length >= start + 4 && bytes.toString('latin1', start, start + 4) === '{\\rt') return 'rtf';
  if (bytes.length >= 3 && bytes.toString('latin1', 0, 3) === 'ID;') return 'sylk';
  if (startsWith(bytes, ACTIVEMIME, start)) return 'activemime';
  const head = decodeText(bytes, HEAD);
  const trimmed = head.replace(/^[\s\ufeff]+/, '');
  if (trimmed.startsWith('<')) {
    if (head.includes('http://schemas.microsoft.com/office/word/2003/wordml') || /<\w*:?wordDocument[\s>]/.test(head)) return 'word2003';
    if (head.includes('http://schemas.microsoft.com/office/2006/xmlPackage') || /<\w*:?package[\s>][^>]*xmlPackage/.test(head) || head.includes('<pkg:package'))
      return 'flatopc';
  }
  const lower = head.slice(0, 8192).toLowerCase();
  const mv = lower.indexOf('mime-version');
  if (mv >= 0 && lower.includes('multipart')) return 'mht';
  if (looksLikeMessage(bytes)) return 'message';
  if (trimmed.startsWith(ACTIVEMIME_B64)) return 'activemime';
  if (hasZipEocd(bytes)) return 'zip';
  return sniffContainerTail(bytes) ?? 'other';
}

/** Kinds an Office application opens as a document or that carry one (for TYPE_MISMATCH). */
export function isOfficeKind(kind: Kind): boolean {
  return kind !== 'other' && kind !== 'lnk' && kind !== 'message' && !isProgramKind(kind);
}
