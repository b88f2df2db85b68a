// Kinds the later Emotet/Qakbot waves moved to once macros were blocked: compressed files and
// archives other than zip (gzip, tar, 7z, RAR, CAB, ...), disk images (ISO 9660, UDF, VHD, VHDX, a
// raw FAT/NTFS volume saved as .img), and programs (Windows PE, compiled HTML help). By bytes only,
// never by name; sniff.ts asks here after its own magic numbers.

export type ContainerKind =
  | 'gzip'
  | 'tar'
  | 'sevenzip'
  | 'rar'
  | 'cab'
  | 'xz'
  | 'bzip2'
  | 'lzh'
  | 'iso' // ISO 9660 (CD001), no UDF descriptor
  | 'udf' // UDF (NSR02/NSR03), pure or an ISO/UDF bridge
  | 'vhd'
  | 'vhdx'
  | 'fsimage' // a raw FAT or NTFS volume (.img)
  | 'ace' // recognised, but no maintained library reads it
  | 'pe' // Windows PE: .exe .dll .scr .cpl ...
  | 'chm'; // compiled HTML help (ITSF)

const SECTOR = 2048;
/** volume recognition sequence: sectors 16.. of a CD/DVD image */
const VRS_FIRST = 16 * SECTOR;
const VRS_SECTORS = 8;

function at(bytes: Buffer, offset: number, magic: string | number[]): boolean {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : Buffer.from(magic);
  return offset >= 0 && bytes.length >= offset + m.length && bytes.compare(m, 0, m.length, offset, offset + m.length) === 0;
}

/** `MZ`, and `PE\0\0` where the DOS header's e_lfanew points: a .txt that starts with "MZ" is no PE. */
export function isPe(bytes: Buffer): boolean {
  if (!at(bytes, 0, 'MZ') || bytes.length < 0x40) return false;
  const lfanew = bytes.readUInt32LE(0x3c);
  return lfanew >= 0x40 && lfanew <= bytes.length - 24 && at(bytes, lfanew, 'PE\0\0');
}

/** ISO 9660 and/or UDF descriptors in the volume recognition sequence. */
export function opticalDescriptors(bytes: Buffer): { iso: boolean; udf: boolean } {
  let iso = false;
  let udf = false;
  for (let s = 0; s < VRS_SECTORS; s++) {
    const off = VRS_FIRST + s * SECTOR + 1;
    if (bytes.length < off + 5) break;
    const id = bytes.toString('latin1', off, off + 5);
    if (id === 'CD001') iso = true;
    else if (id === 'NSR02' || id === 'NSR03') udf = true;
    else if (id !== 'BEA01' && id !== 'TEA01' && id !== 'BOOT2' && id !== 'CDW02') break;
  }
  return { iso, udf };
}

/** A POSIX/GNU tar header (`ustar` magic), or a v7 header whose checksum adds up. */
function isTar(bytes: Buffer): boolean {
  if (bytes.length < 512) return false;
  if (at(bytes, 257, 'ustar')) return true;
  const stored = bytes
    .toString('latin1', 148, 156)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]{1,7}$/.test(stored) || bytes[0] === 0) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : bytes[i];
  return sum === parseInt(stored, 8);
}

/** A FAT or NTFS boot sector at 0 (a raw volume image, as Windows mounts an .img). */
function isFsImage(bytes: Buffer): boolean {
  if (bytes.length < 4096 || bytes[510] !== 0x55 || bytes[511] !== 0xaa) return false;
  if (!(bytes[0] === 0xeb || bytes[0] === 0xe9)) return false;
  return at(bytes, 3, 'NTFS    ') || at(bytes, 0x36, 'FAT1') || at(bytes, 0x52, 'FAT32');
}

/** Magic numbers at the start of the blob (cheap, tested early). */
export function sniffContainerHead(bytes: Buffer): ContainerKind | null {
  if (at(bytes, 0, [0x1f, 0x8b, 0x08])) return 'gzip';
  if (at(bytes, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return 'sevenzip';
  if (at(bytes, 0, 'Rar!\x1a\x07')) return 'rar';
  if (at(bytes, 0, 'MSCF\0\0\0\0')) return 'cab';
  if (at(bytes, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (at(bytes, 0, 'BZh') && bytes[3] >= 0x31 && bytes[3] <= 0x39 && at(bytes, 4, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59])) return 'bzip2';
  if (bytes.length >= 7 && /^-(lh[0-7d]|lz[s45])-$/.test(bytes.toString('latin1', 2, 7))) return 'lzh';
  if (at(bytes, 7, '**ACE**')) return 'ace';
  if (at(bytes, 0, 'vhdxfile')) return 'vhdx';
  if (at(bytes, 0, 'conectix')) return 'vhd';
  if (at(bytes, 0, 'ITSF') && bytes.length >= 8 && bytes.readUInt32LE(4) === 3) return 'chm';
  if (isPe(bytes)) return 'pe';
  // before the text formats: a tar of an .eml or .rtf starts with that file's name and content
  if (isTar(bytes)) return 'tar';
  return null;
}

/** Signatures away from the start (tested after the text formats: an ISO may start with anything). */
export function sniffContainerTail(bytes: Buffer): ContainerKind | null {
  const optical = opticalDescriptors(bytes);
  if (optical.udf) return 'udf';
  if (optical.iso) return 'iso';
  // a fixed-size VHD is a raw disk with a 512-byte footer (511 in old ones)
  if (at(bytes, bytes.length - 512, 'conectix') || at(bytes, bytes.length - 511, 'conectix')) return 'vhd';
  if (isFsImage(bytes)) return 'fsimage';
  return null;
}

export const CONTAINER_LABELS: Record<ContainerKind, string> = {
  gzip: 'a gzip file',
  tar: 'a tar archive',
  sevenzip: 'a 7z archive',
  rar: 'a RAR archive',
  cab: 'a Microsoft Cabinet',
  xz: 'an xz file',
  bzip2: 'a bzip2 file',
  lzh: 'an LHA/LZH archive',
  iso: 'an ISO 9660 disk image',
  udf: 'a UDF disk image',
  vhd: 'a VHD virtual disk',
  vhdx: 'a VHDX virtual disk',
  fsimage: 'a FAT/NTFS volume image',
  ace: 'an ACE archive',
  pe: 'a Windows executable (PE)',
  chm: 'a compiled HTML help file (CHM)',
};

/** Kinds that are programs, not documents nor containers of documents (rate counters, TYPE_MISMATCH). */
export function isProgramKind(kind: string): boolean {
  return kind === 'pe' || kind === 'chm';
}
