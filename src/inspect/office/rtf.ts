// RTF: embedded objects live in `\objdata` destinations as hex (with whitespace, junk, `\bin` raw
// runs and nested groups tolerated the way Word tolerates them). Each object is an OLE 1.0 object
// (research §3.8): header → native data → the dispatcher (a CFB document with macros inside an RTF
// is a macro finding; an OLE Package carries a whole file).
import type { Finding } from '../finding.js';
import { child, type BlobScanner, type ScanContext } from './types.js';
import { CFB_MAGIC, corruptFinding, limitFinding, spendBytes } from './c-util.js';
import { sniff } from './sniff.js';

const MAX_OBJECTS = 100;

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const isLetter = (c: number | undefined): boolean => c !== undefined && ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a));
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/** The decoded bytes of every `\objdata` destination. */
export function extractObjdata(rtf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let depth = 0;
  let captureDepth = -1; // depth of the group holding \objdata while capturing
  let skipDepth = -1; // a nested `{\*\dest ...}` group inside objdata: ignored
  let buf: Buffer = Buffer.alloc(0);
  let len = 0;
  let nib = -1;
  const push = (b: number): void => {
    if (len === buf.length) {
      const nb = Buffer.alloc(Math.max(1024, buf.length * 2));
      buf.copy(nb, 0, 0, len);
      buf = nb;
    }
    buf[len++] = b;
  };
  const feedHex = (c: number): void => {
    const v = hexVal(c);
    if (v < 0) return;
    if (nib < 0) nib = v;
    else {
      push((nib << 4) | v);
      nib = -1;
    }
  };
  const finish = (): void => {
    if (len > 0) out.push(Buffer.from(buf.subarray(0, len)));
    captureDepth = -1;
    skipDepth = -1;
    len = 0;
    nib = -1;
  };
  const capturing = (): boolean => captureDepth >= 0 && skipDepth < 0;

  let i = 0;
  while (i < rtf.length && out.length < MAX_OBJECTS) {
    const c = rtf[i];
    if (c === 0x7b /* { */) {
      depth++;
      i++;
      if (capturing() && rtf[i] === 0x5c && rtf[i + 1] === 0x2a) skipDepth = depth;
      continue;
    }
    if (c === 0x7d /* } */) {
      if (skipDepth === depth) skipDepth = -1;
      if (captureDepth >= 0 && depth === captureDepth) finish();
      depth = Math.max(0, depth - 1);
      i++;
      continue;
    }
    if (c === 0x5c /* \ */) {
      const n = rtf[i + 1];
      if (isLetter(n)) {
        let j = i + 1;
        while (j < rtf.length && j - i <= 32 && isLetter(rtf[j])) j++;
        const word = rtf.toString('latin1', i + 1, j).toLowerCase();
        const pStart = j;
        if (rtf[j] === 0x2d) j++;
        while (j < rtf.length && j - pStart <= 10 && isDigit(rtf[j])) j++;
        const param = rtf.toString('latin1', pStart, j);
        if (rtf[j] === 0x20) j++;
        i = j;
        if (word === 'objdata') {
          if (captureDepth < 0) {
            captureDepth = depth;
            for (const ch of Buffer.from(param.replace('-', ''), 'latin1')) feedHex(ch);
          }
        } else if (word === 'bin') {
          const count = Math.max(0, Math.min(parseInt(param || '0', 10) || 0, rtf.length - i));
          if (capturing()) {
            nib = -1;
            for (let k = 0; k < count; k++) push(rtf[i + k]);
          }
          i += count;
        }
        continue;
      }
      if (n === 0x27 /* \'hh */) {
        i += 4;
        continue;
      }
      i += 2; // control symbol
      continue;
    }
    if (capturing()) feedHex(c);
    i++;
  }
  if (captureDepth >= 0 && out.length < MAX_OBJECTS) finish(); // unterminated (truncated) objdata
  return out;
}

export interface Ole1Object {
  formatId: number;
  className: string;
  topic: string;
  item: string;
  /** native data (embedded objects) */
  data?: Buffer;
  /** for class `Package`: the embedded file's name and bytes */
  packageFile?: { name: string; data: Buffer };
}

/** Parses an OLE 1.0 object (OLEVersion, FormatID, ClassName, Topic, Item, NativeData); null if not one. */
export function parseOle1(b: Buffer): Ole1Object | null {
  let p = 0;
  const u32 = (): number => {
    if (p + 4 > b.length) throw new Error('short');
    const v = b.readUInt32LE(p);
    p += 4;
    return v;
  };
  const lpstr = (): string => {
    const n = u32();
    if (n > 4096 || p + n > b.length) throw new Error('bad string');
    const s = b.toString('latin1', p, p + n).replace(/\0.*$/s, '');
    p += n;
    return s;
  };
  try {
    u32(); // OLEVersion (0x0501 usually; not checked: Word does not)
    const formatId = u32();
    if (formatId !== 1 && formatId !== 2) return null;
    const className = lpstr();
    const topic = lpstr();
    const item = lpstr();
    if (formatId === 1) return { formatId, className, topic, item };
    const size = u32();
    const data = b.subarray(p, Math.min(b.length, p + size));
    const obj: Ole1Object = { formatId, className, topic, item, data };
    if (/^package$/i.test(className)) obj.packageFile = parsePackage(data) ?? undefined;
    return obj;
  } catch {
    return null;
  }
}

/** OLE Package native data: u16 type, label, original path, u32, temp path, u32 size, file bytes. */
function parsePackage(d: Buffer): { name: string; data: Buffer } | null {
  try {
    let p = 2;
    const cstr = (): string => {
      const end = d.indexOf(0, p);
      if (end < 0) throw new Error('no nul');
      const s = d.toString('latin1', p, end);
      p = end + 1;
      return s;
    };
    const label = cstr();
    cstr(); // original path
    p += 4; // 0x00030000 (embedded file)
    const tmpLen = d.readUInt32LE(p);
    p += 4 + tmpLen;
    const size = d.readUInt32LE(p);
    p += 4;
    if (p + size > d.length) return null;
    return { name: label || 'package', data: d.subarray(p, p + size) };
  } catch {
    return null;
  }
}

export async function scanRtf(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  let objects: Buffer[];
  try {
    objects = extractObjdata(bytes);
  } catch {
    return [corruptFinding(ctx, 'RTF unparsable')];
  }
  let n = 0;
  for (const raw of objects) {
    n++;
    if (!spendBytes(ctx, raw.length)) {
      findings.push(limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, `objdata#${n}`));
      break;
    }
    const ole = parseOle1(raw);
    if (ole?.packageFile) {
      findings.push(...(await scanBlob(ole.packageFile.data, child(ctx, `objdata#${n} (Package ${ole.packageFile.name})`))));
      continue;
    }
    if (ole?.data && ole.data.length > 0) {
      const label = `objdata#${n} (${ole.className || 'OLE object'})`;
      const at = sniff(ole.data) === 'other' ? ole.data.indexOf(CFB_MAGIC) : 0;
      findings.push(...(await scanBlob(at > 0 ? ole.data.subarray(at) : ole.data, child(ctx, label))));
      continue;
    }
    if (ole) continue; // linked object: nothing embedded
    // not an OLE 1.0 object: a raw document, or a CFB somewhere inside
    const at = sniff(raw) === 'other' ? raw.indexOf(CFB_MAGIC) : 0;
    if (at >= 0) findings.push(...(await scanBlob(at > 0 ? raw.subarray(at) : raw, child(ctx, `objdata#${n}`))));
  }
  return findings;
}
