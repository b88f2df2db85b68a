// PowerPoint 97-2003: the VBA project (and embedded OLE objects) live in `ExOleObjStg`-family
// atoms, record type 0x1011, inside the `PowerPoint Document` stream: recInstance 1 = u32
// decompressed size + zlib stream, recInstance 0 = the raw CFB. Like oletools and ClamAV we scan
// the stream for these record headers instead of following the persist directory.
import { constants, inflateSync } from 'node:zlib';

export interface PptAtom {
  offset: number;
  compressed: boolean;
  /** the embedded CFB (decompressed), or undefined when inflating failed */
  data?: Buffer;
  error?: string;
}

/** Record header: u16 (ver:4, instance:12), u16 type, u32 length. */
export function pptOleAtoms(stream: Buffer, maxBytes: number, maxAtoms = 256): PptAtom[] {
  const out: PptAtom[] = [];
  const sig = Buffer.from([0x11, 0x10]);
  let from = 2;
  while (out.length < maxAtoms) {
    const i = stream.indexOf(sig, from);
    if (i < 0 || i + 6 > stream.length) break;
    from = i + 1;
    const verInst = stream.readUInt16LE(i - 2);
    const ver = verInst & 0x0f;
    const inst = verInst >> 4;
    if (ver !== 0 || inst > 1) continue;
    const len = stream.readUInt32LE(i + 2);
    const body = i + 6;
    if (len < 8 || body + len > stream.length) continue;
    const rec = stream.subarray(body, body + len);
    if (inst === 0) {
      if (rec.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))) out.push({ offset: i - 2, compressed: false, data: rec });
      continue;
    }
    const size = rec.readUInt32LE(0);
    if (rec[4] !== 0x78) continue; // zlib header
    if (size > maxBytes) {
      out.push({ offset: i - 2, compressed: true, error: 'declared size over budget' });
      continue;
    }
    try {
      const data = inflateSync(rec.subarray(4), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(1, Math.min(maxBytes, size + 4096)) });
      out.push({ offset: i - 2, compressed: true, data });
    } catch (e) {
      out.push({ offset: i - 2, compressed: true, error: (e as Error).message });
    }
    from = body + len;
  }
  return out;
}
