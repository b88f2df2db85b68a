// A bounded reader for Compound File Binary ([MS-CFB]) files: .doc/.xls/.ppt, vbaProject.bin,
// encrypted OOXML, embedded OLE objects. Written for hostile input: every sector chain walk is
// guarded against loops and out-of-range sectors, the directory tree walk against cycles, and
// directory entries not reachable from the tree ("orphans", oletools issue #8) are kept.
// (SheetJS `cfb` is used by the tests to *write* fixtures; its reader follows chains without a
// loop check and can spin on a cyclic directory tree, so it is not used on mail input.)

export const CFB_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

const ENDOFCHAIN = 0xfffffffe;
const FREESECT = 0xffffffff;
const NOSTREAM = 0xffffffff;

export class CfbError extends Error {}

export const enum EntryType {
  Storage = 1,
  Stream = 2,
  Root = 5,
}

export interface CfbEntry {
  id: number;
  name: string;
  type: EntryType;
  left: number;
  right: number;
  child: number;
  start: number;
  size: number;
  /** id of the parent storage, -1 for the root and for orphans */
  parent: number;
  /** 'Macros/VBA/dir' (root not included); an orphan's path is its name */
  path: string;
  orphan: boolean;
}

export function isCfb(bytes: Buffer): boolean {
  return bytes.length >= 512 && bytes.subarray(0, 8).equals(CFB_MAGIC);
}

export class Cfb {
  readonly entries: CfbEntry[] = [];
  private readonly ss: number;
  private readonly fat: Uint32Array;
  private miniFat: Uint32Array = new Uint32Array(0);
  private miniStream: Buffer = Buffer.alloc(0);
  private readonly miniCutoff: number;
  /** true when a chain was cut short or pointed outside the file */
  damaged = false;
  /** bytes all read() calls may still return: cross-linked chains must not multiply the file */
  private readLeft: number;

  constructor(
    private readonly buf: Buffer,
    private readonly maxStreamBytes = 64 * 1024 * 1024,
  ) {
    if (!isCfb(buf)) throw new CfbError('not a CFB file');
    this.readLeft = Math.max(8 * buf.length, 32 * 1024 * 1024);
    const shift = buf.readUInt16LE(0x1e);
    if (shift !== 9 && shift !== 12) throw new CfbError(`bad sector shift ${shift}`);
    this.ss = 1 << shift;
    const miniShift = buf.readUInt16LE(0x20);
    if (miniShift !== 6) throw new CfbError(`bad mini sector shift ${miniShift}`);
    this.miniCutoff = buf.readUInt32LE(0x38) || 4096;
    const numFat = buf.readUInt32LE(0x2c);
    const firstDir = buf.readUInt32LE(0x30);
    const firstMiniFat = buf.readUInt32LE(0x3c);
    const numMiniFat = buf.readUInt32LE(0x40);
    let difat = buf.readUInt32LE(0x44);
    const numDifat = buf.readUInt32LE(0x48);
    const sectorCount = Math.ceil((buf.length - this.ss) / this.ss);

    // FAT sector numbers: 109 in the header, the rest along the DIFAT chain.
    const fatSectors: number[] = [];
    for (let i = 0; i < 109 && fatSectors.length < numFat; i++) {
      const s = buf.readUInt32LE(0x4c + i * 4);
      if (s === FREESECT || s === ENDOFCHAIN) continue;
      fatSectors.push(s);
    }
    const seenDifat = new Set<number>();
    for (let n = 0; n < numDifat && difat !== ENDOFCHAIN && difat !== FREESECT && fatSectors.length < numFat; n++) {
      if (seenDifat.has(difat) || difat >= sectorCount) {
        this.damaged = true;
        break;
      }
      seenDifat.add(difat);
      const sec = this.sector(difat);
      const per = this.ss / 4 - 1;
      for (let i = 0; i < per && fatSectors.length < numFat; i++) {
        const s = sec.readUInt32LE(i * 4);
        if (s !== FREESECT && s !== ENDOFCHAIN) fatSectors.push(s);
      }
      difat = sec.readUInt32LE(per * 4);
    }
    if (fatSectors.length === 0) throw new CfbError('no FAT');
    const per = this.ss / 4;
    const fat = new Uint32Array(fatSectors.length * per).fill(FREESECT);
    fatSectors.forEach((s, i) => {
      if (s >= sectorCount) {
        this.damaged = true;
        return;
      }
      const sec = this.sector(s);
      for (let j = 0; j < per && j * 4 + 4 <= sec.length; j++) fat[i * per + j] = sec.readUInt32LE(j * 4);
    });
    this.fat = fat;

    // Directory.
    const dir = this.chain(firstDir, Infinity, 1 << 20);
    if (dir.length < 128) throw new CfbError('no directory');
    const count = Math.floor(dir.length / 128);
    for (let i = 0; i < count; i++) {
      const e = dir.subarray(i * 128, i * 128 + 128);
      const nameLen = Math.min(e.readUInt16LE(64), 64);
      const name = e
        .subarray(0, Math.max(0, nameLen - 2))
        .toString('utf16le')
        .replace(/\0+$/, '');
      this.entries.push({
        id: i,
        name,
        type: e[66],
        left: e.readUInt32LE(68),
        right: e.readUInt32LE(72),
        child: e.readUInt32LE(76),
        start: e.readUInt32LE(116),
        size: e.readUInt32LE(120),
        parent: -1,
        path: name,
        orphan: true,
      });
    }
    const root = this.entries[0];
    if (!root || root.type !== EntryType.Root) throw new CfbError('no root entry');
    root.orphan = false;
    root.path = '';

    // Tree walk (iterative, cycle-safe): siblings share the parent, `child` descends.
    const visited = new Uint8Array(count);
    visited[0] = 1;
    const stack: Array<[number, number]> = [[root.child, 0]];
    while (stack.length) {
      const [id, parent] = stack.pop()!;
      if (id === NOSTREAM || id >= count || visited[id]) continue;
      visited[id] = 1;
      const e = this.entries[id];
      if (e.type !== EntryType.Storage && e.type !== EntryType.Stream) continue;
      e.parent = parent;
      e.orphan = false;
      const pp = this.entries[parent].path;
      e.path = pp ? `${pp}/${e.name}` : e.name;
      stack.push([e.left, parent], [e.right, parent]);
      if (e.type === EntryType.Storage) stack.push([e.child, id]);
    }

    // Mini stream and mini FAT.
    if (root.start !== ENDOFCHAIN && root.size > 0) {
      this.miniStream = this.chain(root.start, root.size, this.maxStreamBytes);
    }
    if (numMiniFat > 0 && firstMiniFat !== ENDOFCHAIN) {
      const mf = this.chain(firstMiniFat, numMiniFat * this.ss, this.maxStreamBytes);
      this.miniFat = new Uint32Array(Math.floor(mf.length / 4));
      for (let i = 0; i < this.miniFat.length; i++) this.miniFat[i] = mf.readUInt32LE(i * 4);
    }
  }

  private sector(n: number): Buffer {
    const off = (n + 1) * this.ss;
    if (off >= this.buf.length) {
      this.damaged = true;
      return Buffer.alloc(0);
    }
    return this.buf.subarray(off, Math.min(off + this.ss, this.buf.length));
  }

  /** Follows a FAT chain; stops at ENDOFCHAIN, a loop, an out-of-range sector or `want` bytes. */
  private chain(start: number, want: number, cap: number): Buffer {
    const limit = Math.min(want, cap);
    const parts: Buffer[] = [];
    let got = 0;
    const seen = new Set<number>();
    let s = start;
    while (s !== ENDOFCHAIN && got < limit) {
      if (s >= this.fat.length || seen.has(s)) {
        this.damaged = true;
        break;
      }
      seen.add(s);
      const sec = this.sector(s);
      if (sec.length === 0) break;
      parts.push(sec);
      got += sec.length;
      s = this.fat[s]!;
    }
    const out = Buffer.concat(parts);
    return Number.isFinite(limit) && out.length > limit ? out.subarray(0, limit) : out;
  }

  private miniChain(start: number, size: number): Buffer {
    const parts: Buffer[] = [];
    let got = 0;
    const seen = new Set<number>();
    let s = start;
    while (s !== ENDOFCHAIN && got < size) {
      if (s >= this.miniFat.length || seen.has(s)) {
        this.damaged = true;
        break;
      }
      seen.add(s);
      const off = s * 64;
      if (off >= this.miniStream.length) {
        this.damaged = true;
        break;
      }
      const sec = this.miniStream.subarray(off, Math.min(off + 64, this.miniStream.length));
      parts.push(sec);
      got += sec.length;
      s = this.miniFat[s]!;
    }
    const out = Buffer.concat(parts);
    return out.length > size ? out.subarray(0, size) : out;
  }

  /** A stream's bytes (possibly short when the file is damaged). */
  read(e: CfbEntry): Buffer {
    if (e.type !== EntryType.Stream || e.size === 0) return Buffer.alloc(0);
    const size = Math.min(e.size, this.maxStreamBytes);
    const out = e.size < this.miniCutoff ? this.miniChain(e.start, size) : this.chain(e.start, size, this.maxStreamBytes);
    this.readLeft -= out.length;
    if (this.readLeft < 0) throw new CfbError('streams overlap: read more than 8x the file size');
    return out;
  }

  children(id: number): CfbEntry[] {
    return this.entries.filter((e) => e.parent === id && !e.orphan && e.id !== id);
  }

  child(id: number, name: string): CfbEntry | undefined {
    const lower = name.toLowerCase();
    return this.entries.find((e) => e.parent === id && !e.orphan && e.id !== id && e.name.toLowerCase() === lower);
  }

  streams(): CfbEntry[] {
    return this.entries.filter((e) => e.type === EntryType.Stream);
  }
}
