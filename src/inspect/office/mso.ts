// Word 2003 XML, Flat OPC, MHT and ActiveMime (research §3.7): the macro project of these formats
// sits base64-encoded in the text, either as a plain CFB (Flat OPC vbaProject, oledata.mso) or
// wrapped in ActiveMime (editdata.mso, MHT parts): header, then a zlib stream holding the CFB.
import { hash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import type { Finding } from '../finding.js';
import { child, OFFICE_SYMBOLS, partOf, type BlobScanner, type ScanContext } from './types.js';
import { corruptFinding, decodeText, finding, limitFinding, spendBytes, xmlElements, xmlUnescape } from './c-util.js';
import { extractSheetFormulas } from './ooxml.js';
import { analyzeXlm } from './xlm.js';
import { lenientParts } from '../mime/lenient.js';

const ACTIVEMIME = Buffer.from('ActiveMime', 'latin1');
const ACTIVEMIME_B64 = 'QWN0aXZlTWltZQ';
const MAX_PARTS = 500;

export function isActiveMime(b: Buffer): boolean {
  return b.length >= ACTIVEMIME.length && b.compare(ACTIVEMIME, 0, ACTIVEMIME.length, 0, ACTIVEMIME.length) === 0;
}

/**
 * The payload (usually a CFB) of an ActiveMime blob: zlib data at u16@0x1E + 46, else at 0x32, 0x22A,
 * else at any 0x78 byte (research §3.7). Null when nothing inflates. `maxOut` caps the output.
 */
export function unwrapActiveMime(b: Buffer, maxOut: number): Buffer | null {
  const offsets: number[] = [];
  if (b.length > 0x20) offsets.push(b.readUInt16LE(0x1e) + 46);
  offsets.push(0x32, 0x22a);
  for (let i = 0x0c; i < b.length && offsets.length < 64; i++) if (b[i] === 0x78) offsets.push(i);
  const tried = new Set<number>();
  for (const off of offsets) {
    if (tried.has(off) || off >= b.length - 2) continue;
    tried.add(off);
    if (b[off] !== 0x78) continue;
    try {
      const out = inflateSync(b.subarray(off), { maxOutputLength: Math.max(1, maxOut) });
      if (out.length > 0) return out;
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw e;
    }
  }
  return null;
}

function b64(s: string): Buffer {
  return Buffer.from(s.replace(/[^A-Za-z0-9+/=_-]/g, ''), 'base64');
}

/** Scans one decoded blob: ActiveMime is unwrapped first, anything else goes to the dispatcher. */
async function scanDecoded(data: Buffer, ctx: ScanContext, name: string, scanBlob: BlobScanner): Promise<Finding[]> {
  if (!spendBytes(ctx, data.length)) return [limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, name)];
  if (!isActiveMime(data)) return scanBlob(data, child(ctx, name));
  return scanActiveMimeBytes(data, child(ctx, name), scanBlob);
}

async function scanActiveMimeBytes(data: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  let inner: Buffer | null;
  try {
    inner = unwrapActiveMime(data, ctx.budget.bytesLeft);
  } catch {
    return [limitFinding(ctx, `ActiveMime payload beyond the ${ctx.budget.bytesLeft} bytes left in the budget`)];
  }
  if (!inner) return [corruptFinding(ctx, 'ActiveMime without an inflatable payload')];
  if (!spendBytes(ctx, inner.length)) return [limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`)];
  return scanBlob(inner, child(ctx, 'ActiveMime'));
}

/** ActiveMime at the top level: raw bytes or its base64 text. */
export async function scanActiveMime(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const raw = isActiveMime(bytes) ? bytes : b64(bytes.toString('latin1'));
  if (!isActiveMime(raw)) return [corruptFinding(ctx, 'ActiveMime base64 undecodable')];
  return scanActiveMimeBytes(raw, ctx, scanBlob);
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)(?:[\\w.-]+:)?${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m ? xmlUnescape(m[1] ?? m[2] ?? '') : undefined;
}

/** Word 2003 XML: every `w:binData` (editdata.mso = ActiveMime VBA, oledata.mso = OLE objects). */
export async function scanWord2003(text: string, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  let n = 0;
  for (const el of xmlElements(text, 'binData')) {
    if (++n > MAX_PARTS) break;
    const name = attr(el.attrs, 'name') ?? `binData#${n}`;
    findings.push(...(await scanDecoded(b64(el.body), ctx, name, scanBlob)));
  }
  return findings;
}

/** Flat OPC: every `pkg:part` — binary parts decoded and scanned, macro sheets analysed. */
export async function scanFlatOpc(text: string, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  let n = 0;
  for (const el of xmlElements(text, 'part')) {
    if (++n > MAX_PARTS) break;
    const name = (attr(el.attrs, 'name') ?? `part#${n}`).replace(/^\//, '');
    const contentType = attr(el.attrs, 'contentType') ?? '';
    const body = el.body;
    const bin = xmlElements(body, 'binaryData').next();
    if (!bin.done) {
      findings.push(...(await scanDecoded(b64(bin.value.body), ctx, name, scanBlob)));
      continue;
    }
    if (/macrosheet/i.test(contentType) || /^xl\/(macrosheets|intlmacrosheets)\//i.test(name)) {
      const formulas = extractSheetFormulas(body);
      if (formulas.length === 0) findings.push(finding(OFFICE_SYMBOLS.OFFICE_VBA_PROJECT_EMPTY, ctx, 'Excel 4.0 macro sheet without formulas', name));
      else {
        const out = analyzeXlm(formulas, partOf(ctx, name));
        if (!out.some((f) => f.symbol === OFFICE_SYMBOLS.OFFICE_XLM_MACRO))
          out.unshift(finding(OFFICE_SYMBOLS.OFFICE_XLM_MACRO, ctx, `Excel 4.0 macro sheet with ${formulas.length} formula(s)`, name));
        findings.push(...out);
      }
    }
  }
  return findings;
}

/** MHT: base64/quoted-printable parts that are ActiveMime or documents; ActiveMime base64 anywhere. */
export async function scanMht(text: string, ctx: ScanContext, scanBlob: BlobScanner, scanned?: Set<string>): Promise<Finding[]> {
  const findings: Finding[] = [];
  let sawActiveMime = false;
  for (const part of lenientParts(text)) {
    if (!part.encoded) continue; // 7bit/8bit text parts: HTML, nothing embedded
    if (isActiveMime(part.bytes)) sawActiveMime = true;
    if (scanned?.has(hash('sha256', part.bytes))) continue; // the MIME walk read this part the same way
    findings.push(...(await scanDecoded(part.bytes, ctx, part.name, scanBlob)));
  }
  // malformed MIME (Word is lenient): find ActiveMime base64 runs directly
  if (!sawActiveMime) {
    let k = 0;
    for (const m of text.matchAll(/QWN0aXZlTWltZQ[A-Za-z0-9+/=\r\n]*/g)) {
      if (++k > 20) break;
      findings.push(...(await scanDecoded(b64(m[0]), ctx, `ActiveMime#${k}`, scanBlob)));
    }
  }
  return findings;
}

export type MsoKind = 'word2003' | 'flatopc' | 'activemime';

export async function scanMso(bytes: Buffer, kind: MsoKind, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  if (kind === 'activemime') return scanActiveMime(bytes, ctx, scanBlob);
  const text = decodeText(bytes);
  if (kind === 'word2003') return scanWord2003(text, ctx, scanBlob);
  return scanFlatOpc(text, ctx, scanBlob);
}
export { ACTIVEMIME_B64 };
