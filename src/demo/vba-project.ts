// A Word 97 document with a VBA project, built in code: MS-OVBA compression, the dir stream, the
// PROJECT and module streams, in a CFB written by SheetJS `cfb`. The demo's macro document is made
// here; the Office tests' fixtures (test/fixtures/office/ole-builders.ts) build on the same code.
// The options a real project never has (a broken dir, a wrong module offset) are there for the tests
// of the parser that must survive them.
import CFB from 'cfb';

// ---- MS-OVBA compression ([MS-OVBA] 2.4.1.3.6-2.4.1.3.9) --------------------------------------

function compressChunk(chunk: Buffer): Buffer {
  const out: number[] = [];
  let p = 0;
  while (p < chunk.length) {
    const flagPos = out.length;
    out.push(0);
    let flags = 0;
    for (let bit = 0; bit < 8 && p < chunk.length; bit++) {
      // CopyToken help: bit count from the decompressed position inside the chunk.
      let bitCount = 4;
      while (1 << bitCount < p) bitCount++;
      const lengthMask = 0xffff >> bitCount;
      const maxLen = lengthMask + 3;
      const maxDist = 1 << bitCount;
      let bestLen = 0;
      let bestDist = 0;
      for (let d = 1; d <= Math.min(p, maxDist); d++) {
        let l = 0;
        while (l < maxLen && p + l < chunk.length && chunk[p + l - d] === chunk[p + l]) l++;
        if (l > bestLen) {
          bestLen = l;
          bestDist = d;
        }
      }
      if (bestLen >= 3) {
        const token = ((bestDist - 1) << (16 - bitCount)) | (bestLen - 3);
        out.push(token & 0xff, token >> 8);
        flags |= 1 << bit;
        p += bestLen;
      } else {
        out.push(chunk[p++]);
      }
    }
    out[flagPos] = flags;
  }
  return Buffer.from(out);
}

/** A CompressedContainer; `raw` stores every 4096-byte chunk uncompressed (flag 0). */
export function compressOvba(data: Buffer, opts: { raw?: boolean } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0x01])];
  for (let off = 0; off < data.length || off === 0; off += 4096) {
    const chunk = data.subarray(off, off + 4096);
    const comp = compressChunk(chunk);
    const header = Buffer.alloc(2);
    if ((opts.raw && chunk.length === 4096) || comp.length > 4096) {
      const padded = Buffer.alloc(4096, 0);
      chunk.copy(padded);
      header.writeUInt16LE((0b011 << 12) | 0x0fff); // flag 0: 4096 raw bytes follow
      parts.push(header, padded);
    } else {
      header.writeUInt16LE(0x8000 | (0b011 << 12) | ((comp.length + 2 - 3) & 0x0fff));
      parts.push(header, comp);
    }
    if (data.length === 0) break;
  }
  return Buffer.concat(parts);
}

// ---- VBA project -------------------------------------------------------------------------------

function rec(id: number, data: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt16LE(id, 0);
  h.writeUInt32LE(data.length, 2);
  return Buffer.concat([h, data]);
}
/** Little-endian fields, as OLE2 records write them (the test fixtures' builders use these too). */
export const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

export interface ModuleSpec {
  name: string;
  code: string;
  /** MBCS bytes of the name in the project code page (default latin1 of `name`) */
  nameBytes?: Buffer;
  /** omit MODULESTREAMNAMEUNICODE/MODULENAMEUNICODE so lookup needs the code page */
  noUnicode?: boolean;
  /** procedural (default) or document module */
  document?: boolean;
  /** MODULEOFFSET written into dir, when it must be wrong */
  badOffset?: number;
  /** bytes of "performance cache" before the compressed source (default 16) */
  cacheBytes?: number;
}

export interface ProjectSpec {
  modules: ModuleSpec[];
  codePage?: number;
  /** PROJECT stream extra lines, e.g. DPB="..." */
  projectLines?: string[];
  /** write a garbled dir stream */
  brokenDir?: boolean;
}

/** Decompressed dir stream per [MS-OVBA] 2.3.4.2. */
export function buildDirStream(spec: ProjectSpec): Buffer {
  const cp = spec.codePage ?? 1252;
  const parts: Buffer[] = [
    rec(0x0001, u32(1)), // SYSKIND win32
    rec(0x0002, u32(0x409)), // LCID
    rec(0x0014, u32(0x409)), // LCIDINVOKE
    rec(0x0003, u16(cp)), // CODEPAGE
    rec(0x0004, Buffer.from('VBAProject', 'latin1')),
    rec(0x0005, Buffer.alloc(0)),
    rec(0x0040, Buffer.alloc(0)), // DOCSTRING + unicode
    rec(0x0006, Buffer.alloc(0)),
    rec(0x003d, Buffer.alloc(0)), // HELPFILEPATH 1 + 2
    rec(0x0007, u32(0)), // HELPCONTEXT
    rec(0x0008, u32(0)), // LIBFLAGS
    Buffer.concat([u16(0x0009), u32(4), u32(0x5e), u16(0x10)]), // PROJECTVERSION (reserved size 4 + 6 bytes)
    rec(0x000c, Buffer.alloc(0)),
    rec(0x003c, Buffer.alloc(0)), // CONSTANTS + unicode
    // one registered reference (stdole)
    rec(0x0016, Buffer.from('stdole', 'latin1')),
    rec(0x003e, Buffer.from('stdole', 'utf16le')),
    rec(0x000d, Buffer.concat([u32(4), Buffer.from('*\\G', 'latin1'), u32(0), u16(0)])),
    rec(0x000f, u16(spec.modules.length)), // PROJECTMODULES
    rec(0x0013, u16(0xffff)), // PROJECTCOOKIE
  ];
  for (const m of spec.modules) {
    const nb = m.nameBytes ?? Buffer.from(m.name, 'latin1');
    parts.push(rec(0x0019, nb));
    if (!m.noUnicode) parts.push(rec(0x0047, Buffer.from(m.name, 'utf16le')));
    parts.push(rec(0x001a, nb));
    if (!m.noUnicode) parts.push(rec(0x0032, Buffer.from(m.name, 'utf16le')));
    parts.push(rec(0x001c, Buffer.alloc(0)), rec(0x0048, Buffer.alloc(0)));
    parts.push(rec(0x0031, u32(m.badOffset ?? m.cacheBytes ?? 16)));
    parts.push(rec(0x001e, u32(0)), rec(0x002c, u16(0xffff)));
    parts.push(rec(m.document ? 0x0022 : 0x0021, Buffer.alloc(0)));
    parts.push(rec(0x002b, Buffer.alloc(0)));
  }
  parts.push(rec(0x0010, Buffer.alloc(0)));
  return Buffer.concat(parts);
}

export function moduleSource(name: string, code: string): string {
  return `Attribute VB_Name = "${name}"\r\n${code.replace(/\r?\n/g, '\r\n')}`;
}

/** Adds a VBA project under `root` ('' for vbaProject.bin, 'Macros' for Word, '_VBA_PROJECT_CUR' for Excel). */
export function addVbaProject(cfb: CFB.CFB$Container, root: string, spec: ProjectSpec): void {
  const base = root ? `/${root}` : '';
  const lines = ['ID="{00000000-0000-0000-0000-000000000000}"'];
  for (const m of spec.modules) lines.push(m.document ? `Document=${m.name}/&H00000000` : `Module=${m.name}`);
  lines.push('Name="VBAProject"', ...(spec.projectLines ?? []));
  CFB.utils.cfb_add(cfb, `${base}/PROJECT`, Buffer.from(lines.join('\r\n') + '\r\n', 'latin1'));
  CFB.utils.cfb_add(cfb, `${base}/PROJECTwm`, Buffer.alloc(2));
  CFB.utils.cfb_add(cfb, `${base}/VBA/_VBA_PROJECT`, Buffer.from([0xcc, 0x61, 0xff, 0xff, 0x00, 0x00, 0x00]));
  const dir = spec.brokenDir ? Buffer.from([0x01, 0x00, 0x00, 0x42]) : compressOvba(buildDirStream(spec));
  CFB.utils.cfb_add(cfb, `${base}/VBA/dir`, dir);
  for (const m of spec.modules) {
    const src = Buffer.from(moduleSource(m.name, m.code), 'latin1');
    const cache = Buffer.alloc(m.cacheBytes ?? 16, 0xaa);
    CFB.utils.cfb_add(cfb, `${base}/VBA/${m.name}`, Buffer.concat([cache, compressOvba(src)]));
  }
}

export function newCfb(): CFB.CFB$Container {
  return CFB.utils.cfb_new();
}

export function writeCfb(cfb: CFB.CFB$Container): Buffer {
  return Buffer.from(CFB.write(cfb, { type: 'buffer' }) as Uint8Array);
}

/** A Word 97 document with a VBA project in Macros/VBA. */
export function buildDoc(spec: ProjectSpec | undefined, opts: { encrypted?: boolean } = {}): Buffer {
  const cfb = newCfb();
  const fib = Buffer.alloc(1024);
  fib.writeUInt16LE(0xa5ec, 0);
  fib.writeUInt16LE(0x00c1, 2);
  fib.writeUInt16LE(opts.encrypted ? 0x0100 : 0, 0x0a);
  CFB.utils.cfb_add(cfb, '/WordDocument', fib);
  CFB.utils.cfb_add(cfb, '/1Table', Buffer.alloc(4096, 0));
  if (spec) addVbaProject(cfb, 'Macros', spec);
  return writeCfb(cfb);
}

/** vbaProject.bin as found in OOXML or in a PowerPoint 0x1011 atom. */
export function buildVbaProjectBin(spec: ProjectSpec): Buffer {
  const cfb = newCfb();
  addVbaProject(cfb, '', spec);
  return writeCfb(cfb);
}
