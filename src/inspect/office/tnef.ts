// TNEF (winmail.dat, application/ms-tnef; [MS-OXTNEF]): Outlook and Exchange wrap a message's
// attachments in it, and Outlook opens them as ordinary attachments. Every attachment goes back
// through the engine: attAttachData, and the MAPI PR_ATTACH_DATA_BIN / PR_ATTACH_DATA_OBJ values
// inside attAttachment (an embedded message there is a TNEF stream of its own, so the dispatcher
// opens it again). Names come from PR_ATTACH_LONG_FILENAME, else attAttachTitle. Lenient like
// Outlook: checksums are not enforced, and a truncated stream yields what it held before the cut.
import type { Finding } from '../finding.js';
import { child, type BlobScanner, type ScanContext } from './types.js';
import { corruptFinding, limitFinding, spendBytes } from './c-util.js';

const SIGNATURE = 0x223e9f78;
const LVL_ATTACHMENT = 0x02;
/** attribute ids (low word of the attribute tag) */
const ATT_ATTACH_DATA = 0x800f;
const ATT_ATTACH_TITLE = 0x8010;
const ATT_ATTACH_REND_DATA = 0x9002;
const ATT_ATTACHMENT = 0x9005;
/** MAPI property ids */
const PR_ATTACH_DATA = 0x3701;
const PR_ATTACH_FILENAME = 0x3704;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PR_DISPLAY_NAME = 0x3001;
/** MAPI property types */
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;
const FIXED_SIZE: Record<number, number> = {
  0x0001: 4,
  0x0002: 4,
  0x0003: 4,
  0x0004: 4,
  0x000a: 4,
  0x000b: 4,
  0x0005: 8,
  0x0006: 8,
  0x0007: 8,
  0x0014: 8,
  0x0040: 8,
  0x0048: 16,
};
const MAX_ATTACHMENTS = 500;
const MAX_PROPERTIES = 10_000;

export interface TnefAttachment {
  title?: string;
  longName?: string;
  /** every data blob the attachment carries (attAttachData, PR_ATTACH_DATA_BIN, PR_ATTACH_DATA_OBJ without its IID) */
  data: Buffer[];
}

export interface TnefContents {
  attachments: TnefAttachment[];
  /** why reading stopped early, if it did */
  truncated?: string;
}

export function isTnef(bytes: Buffer): boolean {
  return bytes.length >= 6 && bytes.readUInt32LE(0) === SIGNATURE;
}

/** The attachments of a TNEF stream. Throws only when the signature is wrong. */
export function readTnef(bytes: Buffer): TnefContents {
  if (!isTnef(bytes)) throw new Error('not a TNEF stream');
  const attachments: TnefAttachment[] = [];
  let current: TnefAttachment | null = null;
  let at = 6; // signature, legacy key
  while (at < bytes.length) {
    // level (1), tag (4), length (4), data, checksum (2); trailing CR LF cruft is common
    if (bytes.length - at < 11) break;
    const level = bytes[at];
    const id = bytes.readUInt16LE(at + 1);
    const length = bytes.readUInt32LE(at + 5);
    const start = at + 9;
    if (start + length > bytes.length) return { attachments, truncated: `attribute 0x${id.toString(16)} runs past the end of the stream` };
    const data = bytes.subarray(start, start + length);
    at = start + length + 2;
    if (level !== LVL_ATTACHMENT) continue;
    if (id === ATT_ATTACH_REND_DATA || !current) {
      if (attachments.length >= MAX_ATTACHMENTS) return { attachments, truncated: `more than ${MAX_ATTACHMENTS} attachments` };
      current = { data: [] };
      attachments.push(current);
      if (id === ATT_ATTACH_REND_DATA) continue;
    }
    if (id === ATT_ATTACH_DATA) current.data.push(data);
    else if (id === ATT_ATTACH_TITLE) current.title = cString(data, 'latin1');
    else if (id === ATT_ATTACHMENT) {
      try {
        readAttachmentProperties(data, current);
      } catch (e) {
        return { attachments, truncated: `attAttachment properties: ${(e as Error).message}` };
      }
    }
  }
  return { attachments };
}

/** The MAPI property list of attAttachment ([MS-OXTNEF] 2.1.3.5): names and data of the attachment. */
function readAttachmentProperties(buf: Buffer, into: TnefAttachment): void {
  const r = new Reader(buf);
  const count = r.u32();
  if (count > MAX_PROPERTIES) throw new Error(`${count} properties`);
  for (let i = 0; i < count; i++) {
    const type = r.u16();
    const id = r.u16();
    if (id >= 0x8000) {
      r.skip(16); // property set GUID
      const kind = r.u32();
      if (kind === 0) r.skip(4);
      else r.skip(pad4(r.u32()));
    }
    const base = type & ~MV_FLAG;
    const variable = base === PT_STRING8 || base === PT_UNICODE || base === PT_BINARY || base === PT_OBJECT;
    const values = type & MV_FLAG || variable ? r.u32() : 1;
    if (values > MAX_PROPERTIES) throw new Error(`${values} values`);
    for (let v = 0; v < values; v++) {
      if (!variable) {
        const size = FIXED_SIZE[base];
        if (size === undefined) throw new Error(`unknown property type 0x${base.toString(16)}`);
        r.skip(size);
        continue;
      }
      const length = r.u32();
      const value = r.take(length);
      r.skipPadding(pad4(length) - length);
      if (id === PR_ATTACH_DATA && base === PT_BINARY) into.data.push(value);
      else if (id === PR_ATTACH_DATA && base === PT_OBJECT && value.length > 16)
        into.data.push(value.subarray(16)); // after the interface id
      else if (id === PR_ATTACH_LONG_FILENAME || (id === PR_ATTACH_FILENAME && !into.longName) || (id === PR_DISPLAY_NAME && !into.longName && !into.title))
        into.longName = base === PT_UNICODE ? cString(value, 'utf16le') : base === PT_STRING8 ? cString(value, 'latin1') : into.longName;
    }
  }
}

export async function scanTnef(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const { attachments, truncated } = readTnef(bytes);
  const findings: Finding[] = [];
  if (truncated) findings.push(corruptFinding(ctx, `TNEF stream cut short: ${truncated}`));
  let n = 0;
  for (const attachment of attachments) {
    n++;
    const name = (attachment.longName || attachment.title || `attachment#${n}`).replace(/[\r\n]+/g, ' ').slice(0, 200);
    const distinct = attachment.data.filter((d, i) => attachment.data.findIndex((e) => e.equals(d)) === i);
    for (const data of distinct) {
      if (!spendBytes(ctx, data.length)) return [...findings, limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, name)];
      const inner = child(ctx, name);
      findings.push(...(await scanBlob(data, { ...inner, declared: { filename: name } })));
    }
  }
  return findings;
}

function cString(b: Buffer, encoding: 'latin1' | 'utf16le'): string {
  const s = b.toString(encoding);
  const nul = s.indexOf('\0');
  return (nul === -1 ? s : s.slice(0, nul)).trim();
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (n < 0 || this.at + n > this.buf.length) throw new Error('property list runs past its attribute');
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.at += n;
  }
  /** padding after a value: writers leave it out after the last one */
  skipPadding(n: number): void {
    this.at = Math.min(this.buf.length, this.at + n);
  }
  take(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
}
