// File types that run code when opened: the waves after macros (LNK, scripts, HTA, CHM, PE, disk
// images, installers). Typed by content where the bytes say it (PE, LNK, CHM, disk images, MSI,
// encoded scripts, HTA and WSF markup), else by name (a .js or .bat has no magic), so a file whose
// name hides its type (invoice.pdf that is a PE) is still found. One finding per blob and symbol.
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS as S, type ScanContext } from './types.js';
import { finding } from './c-util.js';
import { CONTAINER_LABELS, type ContainerKind } from './sniff-containers.js';
import type { Kind } from './sniff.js';

type Symbol = (typeof S)[keyof typeof S];

/** Extensions Windows runs, opens with a script host or mounts; what only the name can tell. */
const BY_EXTENSION: Record<string, Symbol> = {
  exe: S.FILE_EXECUTABLE,
  dll: S.FILE_EXECUTABLE,
  scr: S.FILE_EXECUTABLE,
  cpl: S.FILE_EXECUTABLE,
  com: S.FILE_EXECUTABLE,
  pif: S.FILE_EXECUTABLE,
  ocx: S.FILE_EXECUTABLE,
  msi: S.FILE_INSTALLER,
  msp: S.FILE_INSTALLER,
  msix: S.FILE_INSTALLER,
  msixbundle: S.FILE_INSTALLER,
  appx: S.FILE_INSTALLER,
  appxbundle: S.FILE_INSTALLER,
  appinstaller: S.FILE_INSTALLER,
  jar: S.FILE_JAVA_ARCHIVE,
  js: S.FILE_SCRIPT,
  jse: S.FILE_SCRIPT,
  vbs: S.FILE_SCRIPT,
  vbe: S.FILE_SCRIPT,
  vb: S.FILE_SCRIPT,
  wsf: S.FILE_SCRIPT,
  wsh: S.FILE_SCRIPT,
  wsc: S.FILE_SCRIPT,
  sct: S.FILE_SCRIPT,
  bat: S.FILE_SCRIPT,
  cmd: S.FILE_SCRIPT,
  ps1: S.FILE_SCRIPT,
  psm1: S.FILE_SCRIPT,
  msc: S.FILE_SCRIPT,
  hta: S.FILE_HTML_APPLICATION,
  chm: S.FILE_CHM,
  lnk: S.FILE_SHORTCUT,
  url: S.FILE_SHORTCUT,
  iso: S.FILE_DISK_IMAGE,
  img: S.FILE_DISK_IMAGE,
  vhd: S.FILE_DISK_IMAGE,
  vhdx: S.FILE_DISK_IMAGE,
};

const BY_KIND: Partial<Record<Kind, Symbol>> = {
  pe: S.FILE_EXECUTABLE,
  chm: S.FILE_CHM,
  lnk: S.FILE_SHORTCUT,
  iso: S.FILE_DISK_IMAGE,
  udf: S.FILE_DISK_IMAGE,
  vhd: S.FILE_DISK_IMAGE,
  vhdx: S.FILE_DISK_IMAGE,
  fsimage: S.FILE_DISK_IMAGE,
};

/**
 * The extension Windows acts on: the last one of the base name, after Unicode compatibility folding
 * (full-width `．ｅｘｅ`), without what Windows drops (trailing dots and spaces) or never shows
 * (an NTFS stream suffix, bidi and zero-width marks), cut at a NUL as C string APIs do.
 */
export function effectiveExtension(name: string | undefined): string | undefined {
  if (!name) return undefined;
  let base = name.normalize('NFKC').split('\0')[0];
  base = base.slice(Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\')) + 1);
  base = base.replace(/[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '');
  base = base.replace(/:[^:]*$/, (m) => (/^:\$?[\w.-]*$/.test(m) ? '' : m));
  base = base.replace(/[.\s]+$/, '');
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : undefined;
}

/** MSI, MSP and MST files are CFBs whose root storage has these class ids ({000C108x-0000-0000-C000-000000000046}). */
function cfbRootClassIsInstaller(bytes: Buffer): boolean {
  if (bytes.length < 512) return false;
  const sectorShift = bytes.readUInt16LE(0x1e);
  if (sectorShift !== 9 && sectorShift !== 12) return false;
  const dirSector = bytes.readUInt32LE(0x30);
  const root = (dirSector + 1) << sectorShift;
  if (root + 128 > bytes.length) return false;
  const clsid = bytes.subarray(root + 0x50, root + 0x60);
  const tail = Buffer.from([0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46]);
  return clsid.readUInt16LE(0) >= 0x1082 && clsid.readUInt16LE(0) <= 0x1086 && clsid.readUInt16LE(2) === 0x000c && clsid.subarray(4).equals(tail);
}

const TEXT_HEAD = 64 * 1024;

/** What the text of a script-like file says it is, or null. */
function scriptByContent(bytes: Buffer): { symbol: Symbol; what: string } | null {
  const head = bytes.subarray(0, TEXT_HEAD).toString('latin1');
  // Microsoft Script Encoder output (.vbe/.jse, also inside .wsf/.hta): #@~^ + 6 base64 length chars + ==
  if (/#@~\^[A-Za-z0-9+/]{6}==/.test(head)) return { symbol: S.FILE_SCRIPT, what: 'an encoded Windows script (#@~^, .vbe/.jse)' };
  const text = head.replace(/\0/g, '');
  if (/<hta:application[\s>/]/i.test(text)) return { symbol: S.FILE_HTML_APPLICATION, what: 'an HTML application (HTA:APPLICATION)' };
  // Windows Script File: a <job> or <package> root holding <script language=...>
  const body = text.replace(/^\ufeff?\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*)*/i, '');
  if (/^<(job|package)[\s>]/i.test(body) && /<script[^>]+language\s*=\s*["']?(j|vb)script/i.test(text)) {
    return { symbol: S.FILE_SCRIPT, what: 'a Windows Script File (<job>/<package>)' };
  }
  return null;
}

/** Content types that are no danger themselves even under a dangerous-looking name (checked by name then). */
function contentType(bytes: Buffer, kind: Kind): { symbol: Symbol; what: string } | null {
  const byKind = BY_KIND[kind];
  if (byKind) {
    let what = kind === 'lnk' ? 'a Windows shortcut (LNK)' : CONTAINER_LABELS[kind as ContainerKind];
    if (kind === 'pe' && bytes.length > 0x40) {
      const pe = bytes.readUInt32LE(0x3c);
      if (pe + 24 <= bytes.length && bytes.readUInt16LE(pe + 22) & 0x2000) what = 'a Windows DLL (PE)';
    }
    return { symbol: byKind, what };
  }
  if (kind === 'cfb' && cfbRootClassIsInstaller(bytes)) return { symbol: S.FILE_INSTALLER, what: 'a Windows Installer package (MSI)' };
  if (kind === 'other') return scriptByContent(bytes);
  return null;
}

/** The dangerous-type findings of one blob: by content, and by its declared name when that says more. */
export function dangerousTypeFindings(bytes: Buffer, kind: Kind, ctx: ScanContext): Finding[] {
  const findings: Finding[] = [];
  const name = ctx.declared?.filename;
  const ext = effectiveExtension(name);
  const byContent = contentType(bytes, kind);
  if (byContent) {
    const named = name ? (ext && BY_EXTENSION[ext] === byContent.symbol ? ` (${name})` : ` named ${name}`) : '';
    findings.push(finding(byContent.symbol, ctx, `${byContent.what}${named}`));
  }
  const byName = ext ? BY_EXTENSION[ext] : undefined;
  if (byName && byName !== byContent?.symbol) {
    findings.push(finding(byName, ctx, `named ${name}: Windows ${byName === S.FILE_DISK_IMAGE ? 'mounts' : 'runs or opens'} .${ext} files`));
  }
  return findings;
}

/** A zip that is a Java archive: a manifest and compiled classes (java -jar, javaw on a double click). */
export function javaArchiveFinding(names: string[], ctx: ScanContext): Finding | null {
  const manifest = names.some((n) => n.replace(/^\//, '').toUpperCase() === 'META-INF/MANIFEST.MF');
  const classes = names.filter((n) => n.toLowerCase().endsWith('.class')).length;
  if (!manifest || classes === 0) return null;
  return finding(S.FILE_JAVA_ARCHIVE, ctx, `a Java archive: a manifest and ${classes} class file${classes === 1 ? '' : 's'}`);
}
