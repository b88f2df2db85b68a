// [MS-OVBA]: decompression (2.4.1), the `dir` stream (2.3.4.2) and module source extraction.
import { type Cfb, type CfbEntry, EntryType } from './ole-cfb.js';

/**
 * Decompresses a CompressedContainer starting at `offset`. Returns null when the signature byte is
 * not 0x01; a damaged container yields what was decompressed before the damage.
 */
export function decompressOvba(data: Buffer, offset = 0, maxOut = 16 * 1024 * 1024): Buffer | null {
  if (offset < 0 || offset >= data.length || data[offset] !== 0x01) return null;
  const chunks: Buffer[] = [];
  let total = 0;
  let pos = offset + 1;
  while (pos + 2 <= data.length && total < maxOut) {
    const header = data.readUInt16LE(pos);
    const size = (header & 0x0fff) + 3;
    const sig = (header >> 12) & 0x07;
    const compressed = header >> 15;
    if (sig !== 0b011) break;
    const chunkEnd = Math.min(pos + size, data.length);
    pos += 2;
    const out = Buffer.alloc(4096);
    let n = 0;
    if (!compressed) {
      const raw = data.subarray(pos, Math.min(pos + 4096, data.length));
      raw.copy(out);
      n = raw.length;
      pos += 4096;
    } else {
      let bad = false;
      while (pos < chunkEnd && !bad) {
        const flags = data[pos++];
        for (let bit = 0; bit < 8 && pos < chunkEnd; bit++) {
          if ((flags & (1 << bit)) === 0) {
            if (n >= 4096) {
              bad = true;
              break;
            }
            out[n++] = data[pos++]!;
          } else {
            if (pos + 2 > chunkEnd) {
              bad = true;
              break;
            }
            const token = data.readUInt16LE(pos);
            pos += 2;
            let bitCount = 4;
            while (1 << bitCount < n) bitCount++;
            const lengthMask = 0xffff >> bitCount;
            const length = (token & lengthMask) + 3;
            const dist = (token >> (16 - bitCount)) + 1;
            if (dist > n || n + length > 4096) {
              bad = true;
              break;
            }
            for (let k = 0; k < length; k++, n++) out[n] = out[n - dist]!;
          }
        }
      }
      pos = chunkEnd;
      if (bad) {
        chunks.push(out.subarray(0, n));
        break;
      }
    }
    chunks.push(out.subarray(0, n));
    total += n;
  }
  const res = Buffer.concat(chunks);
  return res.length > maxOut ? res.subarray(0, maxOut) : res;
}

/** Node's ICU TextDecoder labels for the Windows code pages VBA projects use. */
export function decodeCodePage(bytes: Buffer, codePage: number): string {
  const labels: Record<number, string> = {
    874: 'windows-874',
    932: 'shift_jis',
    936: 'gbk',
    949: 'euc-kr',
    950: 'big5',
    1200: 'utf-16le',
    1201: 'utf-16be',
    10000: 'macintosh',
    20866: 'koi8-r',
    28591: 'iso-8859-1',
    28592: 'iso-8859-2',
    54936: 'gb18030',
    65001: 'utf-8',
  };
  const label = labels[codePage] ?? (codePage >= 1250 && codePage <= 1258 ? `windows-${codePage}` : undefined);
  if (label) {
    try {
      return new TextDecoder(label).decode(bytes);
    } catch {
      /* unknown to this ICU build */
    }
  }
  return bytes.toString('latin1');
}

export interface DirModule {
  name: string;
  nameUnicode?: string;
  streamName?: string;
  streamNameUnicode?: string;
  offset: number;
  /** 0x21 procedural, 0x22 document/class/designer */
  kind?: number;
}

export interface DirInfo {
  codePage: number;
  projectName?: string;
  modules: DirModule[];
  /** records could not all be walked (truncated/garbled) */
  damaged: boolean;
}

/** Walks the decompressed `dir` stream records. */
export function parseDir(dir: Buffer): DirInfo {
  const info: DirInfo = { codePage: 1252, modules: [], damaged: false };
  type Raw = { name?: Buffer; nameU?: Buffer; stream?: Buffer; streamU?: Buffer; offset: number; kind?: number };
  const raws: Raw[] = [];
  let raw: Raw | undefined;
  const finish = () => {
    if (raw && (raw.name || raw.nameU || raw.stream || raw.streamU)) raws.push(raw);
    raw = undefined;
  };
  let pos = 0;
  while (pos + 6 <= dir.length) {
    const id = dir.readUInt16LE(pos);
    let size = dir.readUInt32LE(pos + 2);
    pos += 6;
    if (id === 0x0009) size = 6; // PROJECTVERSION: Reserved(4)=4, then 6 bytes
    if (pos + size > dir.length) {
      info.damaged = true;
      break;
    }
    const data = dir.subarray(pos, pos + size);
    pos += size;
    switch (id) {
      case 0x0003:
        if (size >= 2) info.codePage = data.readUInt16LE(0);
        break;
      case 0x0004:
        info.projectName = data.toString('latin1');
        break;
      case 0x0019:
        finish();
        raw = { name: data, offset: 0 };
        break;
      case 0x0047:
        if (raw) raw.nameU = data;
        break;
      case 0x001a:
        if (raw) raw.stream = data;
        break;
      case 0x0032:
        if (raw) raw.streamU = data;
        break;
      case 0x0031:
        if (raw && size >= 4) raw.offset = data.readUInt32LE(0);
        break;
      case 0x0021:
      case 0x0022:
        if (raw) raw.kind = id;
        break;
      case 0x002b:
        finish();
        break;
      default:
        break;
    }
    if (id === 0x0010) break; // dir terminator
  }
  finish();
  for (const r of raws) {
    const nameU = r.nameU?.toString('utf16le');
    info.modules.push({
      name: (r.name ? decodeCodePage(r.name, info.codePage) : '') || nameU || '',
      nameUnicode: nameU,
      streamName: r.stream ? decodeCodePage(r.stream, info.codePage) : undefined,
      streamNameUnicode: r.streamU?.toString('utf16le'),
      offset: r.offset,
      kind: r.kind,
    });
  }
  return info;
}

export interface VbaModuleSource {
  name: string;
  /** CFB path of the module stream */
  stream: string;
  code: string;
  /** source came from the `\0Attribut` fallback (bad MODULEOFFSET, orphan, broken dir) */
  fallback: boolean;
}

export interface VbaProject {
  /** CFB path of the VBA storage */
  storage: string;
  codePage: number;
  modules: VbaModuleSource[];
  /** PROJECT stream has CMG/DPB/GC lines: a locked/protected project */
  locked: boolean;
  /** dir could not be decompressed or parsed */
  dirBroken: boolean;
  /** stream ids whose bytes were consumed as module sources */
  consumed: Set<number>;
}

const ATTRIBUT_SIG = Buffer.from('\x00Attribut', 'latin1');

/** Decompresses from 3 bytes before the first `\0Attribut[^e]` (oletools' fallback). */
export function decompressFromAttribut(stream: Buffer, maxOut?: number): Buffer | null {
  let from = 0;
  for (;;) {
    const i = stream.indexOf(ATTRIBUT_SIG, from);
    if (i < 0) return null;
    from = i + 1;
    if (stream[i + ATTRIBUT_SIG.length] === 0x65 /* 'e': plain text, not compressed */) continue;
    if (i < 3) continue;
    const out = decompressOvba(stream, i - 3, maxOut);
    if (out && looksLikeVbaSource(out)) return out;
  }
}

export function looksLikeVbaSource(text: Buffer): boolean {
  return /^\s*Attribute\s+VB_/i.test(text.subarray(0, 64).toString('latin1'));
}

/**
 * Extracts every module's source from the VBA storage `vba` (whose parent holds PROJECT).
 */
export function extractProject(cfb: Cfb, vba: CfbEntry, maxModuleBytes: number): VbaProject {
  const project: VbaProject = { storage: vba.path, codePage: 1252, modules: [], locked: false, dirBroken: false, consumed: new Set() };
  const parentProject = cfb.child(vba.parent, 'PROJECT');
  if (parentProject) {
    const text = cfb.read(parentProject).toString('latin1');
    project.locked = /^(?:CMG|DPB|GC)=/m.test(text);
  }
  const dirEntry = cfb.child(vba.id, 'dir');
  const dir = dirEntry ? decompressOvba(cfb.read(dirEntry), 0, 4 * 1024 * 1024) : null;
  const info = dir && dir.length > 0 ? parseDir(dir) : undefined;
  if (!info || info.modules.length === 0) project.dirBroken = !info || info.damaged || info.modules.length === 0;
  if (info) project.codePage = info.codePage;
  const streams = cfb.children(vba.id).filter((e) => e.type === EntryType.Stream);
  const byName = (n: string | undefined) => (n ? streams.find((s) => s.name.toLowerCase() === n.toLowerCase()) : undefined);
  for (const m of info?.modules ?? []) {
    const entry = byName(m.streamNameUnicode) ?? byName(m.streamName) ?? byName(m.name) ?? byName(m.nameUnicode);
    if (!entry || project.consumed.has(entry.id)) continue;
    const bytes = cfb.read(entry);
    let src = m.offset < bytes.length ? decompressOvba(bytes, m.offset, maxModuleBytes) : null;
    let fallback = false;
    if (!src || !looksLikeVbaSource(src)) {
      const fb = decompressFromAttribut(bytes, maxModuleBytes);
      if (fb) {
        src = fb;
        fallback = true;
      }
    }
    if (!src) continue;
    project.consumed.add(entry.id);
    project.modules.push({ name: m.name || entry.name, stream: entry.path, code: decodeCodePage(src, project.codePage), fallback });
  }
  // Streams the dir did not lead to (broken dir, renamed streams): look for compressed source.
  const skip = new Set(['dir', '_vba_project', 'project', 'projectwm']);
  for (const s of streams) {
    if (project.consumed.has(s.id) || skip.has(s.name.toLowerCase()) || /^__srp_\d+$/i.test(s.name)) continue;
    const src = decompressFromAttribut(cfb.read(s), maxModuleBytes);
    if (!src) continue;
    project.consumed.add(s.id);
    project.modules.push({ name: s.name, stream: s.path, code: decodeCodePage(src, project.codePage), fallback: true });
  }
  return project;
}

/** Storages that are VBA projects: named VBA, parent holds PROJECT, holds _VBA_PROJECT and dir. */
export function findVbaStorages(cfb: Cfb): { strict: CfbEntry[]; loose: CfbEntry[] } {
  const strict: CfbEntry[] = [];
  const loose: CfbEntry[] = [];
  for (const e of cfb.entries) {
    if (e.type !== EntryType.Storage || e.orphan || e.name.toLowerCase() !== 'vba') continue;
    const hasDir = !!cfb.child(e.id, 'dir');
    const hasVbaProject = !!cfb.child(e.id, '_VBA_PROJECT');
    const hasProject = !!cfb.child(e.parent, 'PROJECT');
    if (hasDir && hasVbaProject && hasProject) strict.push(e);
    else if (hasDir || hasVbaProject) loose.push(e);
  }
  return { strict, loose };
}
