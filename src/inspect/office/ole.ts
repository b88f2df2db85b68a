// OLE2/CFB scanner: VBA projects (Word `Macros/VBA`, Excel `_VBA_PROJECT_CUR/VBA`, vbaProject.bin
// `VBA`, orphaned entries), Excel 4.0 macro sheets in BIFF5/8, PowerPoint 97 VBA atoms, encryption
// (encrypted OOXML packages are decrypted with well-known/announced passwords and handed back to
// the dispatcher; RC4-encrypted .xls workbooks are decrypted in place), embedded OLE objects.
// Never throws: a file that cannot be read is one OFFICE_CORRUPT finding.
import { createHash } from 'node:crypto';
import type { Finding } from '../finding.js';
import { type BlobScanner, type ScanContext, OFFICE_SYMBOLS as S, child, partOf } from './types.js';
import { Cfb, type CfbEntry, CfbError, EntryType, isCfb } from './ole-cfb.js';
import { decompressFromAttribut, decodeCodePage, extractProject, findVbaStorages, type VbaModuleSource } from './vba.js';
import { analyzeVba, codeLines, normaliseSource, procedureNames } from './vba-analysis.js';
import { analyzeXlm, xlmAutoexec } from './xlm.js';
import { parseBiff, type BiffInfo } from './biff.js';
import { pptOleAtoms } from './ppt.js';
import { DEFAULT_PASSWORDS, decryptBiff, decryptOoxml } from './offcrypto.js';

const MAX_MODULE_BYTES = 8 * 1024 * 1024;

function clip(s: string, max = 290): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

class Limit extends Error {}

interface State {
  ctx: ScanContext;
  cfb: Cfb;
  findings: Finding[];
  /** something that can hold macros was read (a VBA project, a decrypted/clear workbook ...) */
  scanned: boolean;
  /** why parts could not be scanned because of encryption */
  encrypted: string[];
  consumed: Set<number>;
  limitHit: boolean;
}

function spend(st: State, bytes: number): void {
  st.ctx.budget.bytesLeft -= bytes;
  if (st.ctx.budget.bytesLeft < 0) throw new Limit('decompressed bytes budget exhausted');
  if (Date.now() > st.ctx.budget.deadline) throw new Limit('time budget exhausted');
}

function checkTime(st: State): void {
  if (Date.now() > st.ctx.budget.deadline) throw new Limit('time budget exhausted');
}

/** The announced passwords first (they open what the sender meant to be opened), then the well-known ones. */
function passwords(ctx: ScanContext): string[] {
  return ctx.passwordsLater ? [] : [...new Set([...ctx.passwords, ...DEFAULT_PASSWORDS])];
}

export async function scanOle(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const here = partOf(ctx);
  if (Date.now() > ctx.budget.deadline) return [{ symbol: S.ARCHIVE_LIMIT, score: 0, part: here, detail: 'time budget exhausted' }];
  if (ctx.depth > ctx.limits.maxDepth) return [{ symbol: S.ARCHIVE_LIMIT, score: 0, part: here, detail: `nesting deeper than ${ctx.limits.maxDepth}` }];
  let cfb: Cfb;
  try {
    if (!isCfb(bytes)) throw new CfbError('no CFB header');
    cfb = new Cfb(bytes, Math.max(0, Math.min(ctx.budget.bytesLeft, 256 * 1024 * 1024)));
  } catch (e) {
    return [{ symbol: S.OFFICE_CORRUPT, score: 0, part: here, detail: clip(`unreadable OLE2 file: ${(e as Error).message}`) }];
  }
  const st: State = { ctx, cfb, findings: [], scanned: false, encrypted: [], consumed: new Set(), limitHit: false };
  try {
    scanVba(st);
    scanWorkbooks(st);
    scanWord(st);
    await scanPowerPoint(st, scanBlob);
    await scanEncryptedPackage(st, scanBlob);
    await scanEmbedded(st, scanBlob);
    scanOrphans(st);
  } catch (e) {
    if (e instanceof Limit) st.findings.push({ symbol: S.ARCHIVE_LIMIT, score: 0, part: here, detail: e.message });
    else st.findings.push({ symbol: S.OFFICE_CORRUPT, score: 0, part: here, detail: clip(`OLE2 scan failed: ${(e as Error).message}`) });
  }
  if (st.encrypted.length && !st.scanned) {
    st.findings.push({ symbol: S.OFFICE_ENCRYPTED_UNSCANNABLE, score: 0, part: here, detail: clip(st.encrypted.join('; ')) });
  }
  if (cfb.damaged && !st.findings.some((f) => f.symbol === S.OFFICE_CORRUPT)) {
    st.findings.push({
      symbol: S.OFFICE_CORRUPT,
      score: 0,
      part: here,
      detail: 'damaged OLE2 structure (sector chain out of range or looping); read what was reachable',
    });
  }
  return st.findings;
}

function reportModules(st: State, where: string, modules: VbaModuleSource[], emptyDetail: string | undefined): void {
  const withCode = modules.filter((m) => codeLines(m.code).length > 0);
  // what was decompressed is reported first; the budget check after it may end the scan
  try {
    reportCode(st, where, withCode, emptyDetail);
  } finally {
    spend(
      st,
      modules.reduce((n, m) => n + m.code.length, 0),
    );
  }
}

function reportCode(st: State, where: string, withCode: VbaModuleSource[], emptyDetail: string | undefined): void {
  if (withCode.length === 0) {
    if (emptyDetail !== undefined) st.findings.push({ symbol: S.OFFICE_VBA_PROJECT_EMPTY, score: 0, part: partOf(st.ctx, where), detail: clip(emptyDetail) });
    return;
  }
  for (const m of withCode) {
    st.ctx.budget.entriesLeft--;
    const procs = procedureNames(m.code);
    const what = procs.length ? `procedures: ${[...new Set(procs)].join(', ')}` : `${codeLines(m.code).length} code line(s), no procedure`;
    st.findings.push({
      symbol: S.OFFICE_MACRO,
      score: 0,
      part: partOf(st.ctx, where, m.name),
      detail: clip(`${what}${m.fallback ? ' (source recovered by signature search)' : ''}`),
      sha256: createHash('sha256').update(normaliseSource(m.code), 'utf8').digest('hex'),
    });
  }
  st.findings.push(
    ...analyzeVba(
      withCode.map((m) => ({ name: m.name, code: m.code })),
      partOf(st.ctx, where),
    ),
  );
}

function scanVba(st: State): void {
  const { strict, loose } = findVbaStorages(st.cfb);
  for (const vba of [...strict, ...loose]) {
    checkTime(st);
    const project = extractProject(st.cfb, vba, Math.min(MAX_MODULE_BYTES, Math.max(0, st.ctx.budget.bytesLeft) + 1));
    for (const id of project.consumed) st.consumed.add(id);
    for (const e of st.cfb.children(vba.id)) st.consumed.add(e.id);
    const isStrict = strict.includes(vba);
    if (isStrict) st.scanned = true;
    const n = project.modules.length;
    const empty = isStrict
      ? `VBA project with ${n} module(s) and no code${project.locked ? ', project locked (DPB/CMG/GC)' : ''}${project.dirBroken ? ', dir stream unreadable' : ''}`
      : undefined;
    reportModules(st, project.storage, project.modules, empty);
  }
}

/** Streams not reached from the directory tree, or outside any project, holding compressed source. */
function scanOrphans(st: State): void {
  const found: VbaModuleSource[] = [];
  for (const e of st.cfb.streams()) {
    if (st.consumed.has(e.id) || e.size < 16) continue;
    if (!e.orphan && /^(?:WordDocument|Workbook|Book|PowerPoint Document|EncryptedPackage|[01]Table|Data)$/i.test(e.name)) continue;
    checkTime(st);
    const bytes = st.cfb.read(e);
    const src = decompressFromAttribut(bytes, MAX_MODULE_BYTES);
    if (!src) continue;
    st.consumed.add(e.id);
    found.push({ name: e.name, stream: e.path, code: decodeCodePage(src, 1252), fallback: true });
  }
  if (found.length) reportModules(st, found.length === 1 ? `${found[0].stream}` : 'orphaned VBA streams', found, undefined);
}

function scanWorkbooks(st: State): void {
  for (const e of st.cfb.streams()) {
    if (!/^(?:Workbook|Book)$/i.test(e.name)) continue;
    checkTime(st);
    const stream = st.cfb.read(e);
    let info: BiffInfo = parseBiff(stream);
    if (info.filepass && info.filepassPos !== undefined) {
      const budget = st.ctx.budget;
      const res = decryptBiff(stream, info.filepassPos, info.filepass, passwords(st.ctx), budget);
      if (!res.data) {
        st.encrypted.push(`${e.path}: encrypted workbook (FILEPASS), ${res.reason ?? 'not decrypted'}`);
        continue;
      }
      info = parseBiff(res.data, true);
    }
    st.scanned = true;
    reportXlm(st, e, info);
  }
}

function reportXlm(st: State, e: CfbEntry, info: BiffInfo): void {
  const vis = ['visible', 'hidden', 'very hidden'];
  let any = false;
  for (const sh of info.sheets) {
    if (sh.type !== 1 || sh.formulas.length === 0) continue;
    any = true;
    const part = partOf(st.ctx, e.path, sh.name);
    for (const f of analyzeXlm(sh.formulas, part)) {
      if (f.symbol === S.OFFICE_XLM_MACRO) f.detail = clip(`${vis[sh.hidden] ?? 'hidden'} macro sheet "${sh.name}", ${f.detail ?? ''}`);
      st.findings.push(f);
    }
  }
  if (info.strayMacroFormulas.length) {
    any = true;
    st.findings.push(...analyzeXlm(info.strayMacroFormulas, partOf(st.ctx, e.path, 'macro sheet')));
  }
  if (any) st.findings.push(...xlmAutoexec(info.names, partOf(st.ctx, e.path)));
}

function scanWord(st: State): void {
  for (const e of st.cfb.streams()) {
    if (e.name !== 'WordDocument' || e.size < 12) continue;
    const fib = st.cfb.read(e);
    if (fib.length < 12 || fib.readUInt16LE(0) !== 0xa5ec) continue;
    const flags = fib.readUInt16LE(0x0a);
    if (flags & 0x0100) st.encrypted.push(`${e.path}: encrypted Word document (FIB fEncrypted${flags & 0x8000 ? ', XOR obfuscated' : ''})`);
  }
  if (st.cfb.entries.some((e) => e.type === EntryType.Stream && e.name === 'EncryptedSummary')) {
    st.encrypted.push('encrypted PowerPoint document (EncryptedSummary)');
  }
}

async function scanPowerPoint(st: State, scanBlob: BlobScanner): Promise<void> {
  for (const e of st.cfb.streams()) {
    if (e.name !== 'PowerPoint Document') continue;
    checkTime(st);
    const atoms = pptOleAtoms(st.cfb.read(e), Math.max(0, st.ctx.budget.bytesLeft));
    for (const a of atoms) {
      const name = `${e.path}@0x${a.offset.toString(16)}`;
      if (!a.data) {
        st.findings.push({ symbol: S.OFFICE_CORRUPT, score: 0, part: partOf(st.ctx, name), detail: clip(`ExOleObjStg atom not readable: ${a.error ?? ''}`) });
        continue;
      }
      spend(st, a.data.length);
      st.ctx.budget.entriesLeft--;
      if (st.ctx.depth + 1 > st.ctx.limits.maxDepth) throw new Limit(`nesting deeper than ${st.ctx.limits.maxDepth}`);
      const sub = await scanOle(a.data, child(st.ctx, name), scanBlob);
      st.scanned = true;
      st.findings.push(...sub);
    }
  }
}

async function scanEncryptedPackage(st: State, scanBlob: BlobScanner): Promise<void> {
  const infoE = st.cfb.child(0, 'EncryptionInfo');
  const pkgE = st.cfb.child(0, 'EncryptedPackage');
  if (!infoE || !pkgE) {
    if (infoE) st.encrypted.push('EncryptionInfo without EncryptedPackage (RC4 CryptoAPI document encryption)');
    return;
  }
  const budget = st.ctx.budget;
  const res = decryptOoxml(st.cfb.read(infoE), st.cfb.read(pkgE), passwords(st.ctx), budget, Math.max(0, budget.bytesLeft));
  if (!res.data) {
    st.encrypted.push(`encrypted OOXML package: ${res.reason ?? 'not decrypted'}`);
    return;
  }
  spend(st, res.data.length);
  st.scanned = true;
  st.consumed.add(pkgE.id);
  st.findings.push(...(await safeScan(scanBlob, res.data, child(st.ctx, 'EncryptedPackage'))));
}

async function safeScan(scanBlob: BlobScanner, data: Buffer, ctx: ScanContext): Promise<Finding[]> {
  try {
    return await scanBlob(data, ctx);
  } catch (e) {
    return [{ symbol: S.OFFICE_CORRUPT, score: 0, part: partOf(ctx), detail: clip(`embedded object scan failed: ${(e as Error).message}`) }];
  }
}

/** OLE1 "Package" native data: u32 size, u16, label\0, path\0, u32, u32 len, temp path, u32 size, data. */
export function ole10NativePayload(b: Buffer): Buffer {
  const whole = b.subarray(4, 4 + Math.min(b.length - 4, b.length >= 4 ? b.readUInt32LE(0) : 0));
  try {
    let p = 2;
    const cstr = () => {
      const z = whole.indexOf(0, p);
      if (z < 0) throw new Error('no NUL');
      p = z + 1;
    };
    cstr();
    cstr();
    p += 4;
    const tmpLen = whole.readUInt32LE(p);
    p += 4 + tmpLen;
    const size = whole.readUInt32LE(p);
    p += 4;
    if (size > 0 && p + size <= whole.length) return whole.subarray(p, p + size);
  } catch {
    /* not the Package layout */
  }
  return whole;
}

async function scanEmbedded(st: State, scanBlob: BlobScanner): Promise<void> {
  for (const e of st.cfb.streams()) {
    let data: Buffer | undefined;
    if (e.name === '\x01Ole10Native') data = ole10NativePayload(st.cfb.read(e));
    else if (/^(?:Package|CONTENTS)$/i.test(e.name) && e.size > 0) data = st.cfb.read(e);
    if (!data || data.length === 0) continue;
    checkTime(st);
    if (st.ctx.budget.entriesLeft-- <= 0) throw new Limit('entry budget exhausted');
    st.consumed.add(e.id);
    const name = e.path.replace(/\x01/g, '\\x01');
    st.findings.push(...(await safeScan(scanBlob, data, child(st.ctx, name))));
  }
}
