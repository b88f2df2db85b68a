// Zip archives (and the zip layer of OOXML): every entry is read with a size cap and scanned through
// the dispatcher. Library: @zip.js/zip.js — it reads from memory buffers, streams each entry into a
// writer we control (so a bomb is cut off at the cap instead of being inflated), and decrypts both
// ZipCrypto and WinZip AES entries, which fflate/yauzl/adm-zip do not all do.
import { inflateRawSync } from 'node:zlib';
import * as zipjs from '@zip.js/zip.js';
import type { Finding } from '../finding.js';
import { child, OFFICE_SYMBOLS, type BlobScanner, type ScanContext } from './types.js';
import { budgetExceeded, corruptFinding, errorText, finding, limitFinding } from './c-util.js';
import { scanOoxml } from './ooxml.js';
import { LeafBytes } from '../mime/leaf-bytes.js';
import { effectiveExtension, javaArchiveFinding } from './dangerous.js';

zipjs.configure({ useWebWorkers: false });

/** Below this many decompressed bytes the ratio limit does not apply (small XML parts compress very well). */
const RATIO_FLOOR = 1024 * 1024;
/** Members declaring at most this many bytes are inflated in one synchronous call (see readSmallMember). */
const SMALL_MEMBER = 256 * 1024;
const LOCAL_HEADER = 0x04034b50;

class CapExceeded extends Error {
  constructor(
    readonly bytes: number,
    readonly reason: 'ratio' | 'budget',
  ) {
    super(`cap exceeded (${reason})`);
  }
}

export interface ZipMember {
  name: string;
  size: number;
  compressedSize: number;
  encrypted: boolean;
  entry: zipjs.FileEntry;
}

/** One opened archive: its members and the per-archive state of reading them (a password that worked). */
export class ZipArchive {
  goodPassword: string | undefined;
  /** encrypted members no candidate password opened */
  unopened: string[] = [];
  passwordsExhausted = false;
  /** set once the byte/time budget is gone: stop reading members */
  stopped = false;

  private constructor(
    readonly members: ZipMember[],
    private readonly reader: zipjs.ZipReader<unknown>,
    private readonly bytes: Buffer,
  ) {}

  static async open(bytes: Buffer): Promise<ZipArchive> {
    const reader = new zipjs.ZipReader(new zipjs.Uint8ArrayReader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)), {
      strictness: 'tolerant',
    });
    const entries = await reader.getEntries();
    const members: ZipMember[] = [];
    for (const e of entries) {
      if (e.directory) continue;
      members.push({ name: e.filename, size: e.uncompressedSize, compressedSize: e.compressedSize, encrypted: e.encrypted, entry: e });
    }
    return new ZipArchive(members, reader, bytes);
  }

  async close(): Promise<void> {
    try {
      await this.reader.close();
    } catch {
      /* nothing to release for a memory reader */
    }
  }

  find(name: string): ZipMember | undefined {
    const n = name.replace(/^\//, '').toLowerCase();
    return this.members.find((m) => m.name.replace(/^\//, '').toLowerCase() === n);
  }

  /**
   * The decompressed bytes of one member, or the findings explaining why not (limit, encryption,
   * corruption). Spends one entry and the decompressed bytes from the shared budget.
   */
  async read(m: ZipMember, ctx: ScanContext): Promise<{ data: Buffer } | { findings: Finding[] }> {
    const name = m.name;
    if (this.stopped) return { findings: [] };
    const over = budgetExceeded(ctx);
    if (over) {
      this.stopped = true;
      return { findings: [limitFinding(ctx, over, name)] };
    }
    if (ctx.budget.entriesLeft <= 0) {
      this.stopped = true;
      return { findings: [limitFinding(ctx, `entry budget of ${ctx.limits.maxEntries} exhausted`, name)] };
    }
    ctx.budget.entriesLeft--;
    if (m.size > ctx.budget.bytesLeft) {
      this.stopped = true;
      return { findings: [limitFinding(ctx, `entry declares ${m.size} bytes, more than the ${ctx.budget.bytesLeft} left in the budget`, name)] };
    }
    if (m.size > RATIO_FLOOR && m.size / Math.max(1, m.compressedSize) > ctx.limits.maxRatio) {
      return { findings: [limitFinding(ctx, `compression ratio ${Math.round(m.size / Math.max(1, m.compressedSize))} > ${ctx.limits.maxRatio}`, name)] };
    }
    if (!m.encrypted) return this.extractOrExplain(m, ctx, undefined);

    const tried = new Set<string>();
    const candidates = [...(this.goodPassword !== undefined ? [this.goodPassword] : []), ...ctx.passwords];
    for (const pw of candidates) {
      if (tried.has(pw)) continue;
      tried.add(pw);
      if (pw !== this.goodPassword) {
        if (ctx.budget.passwordAttemptsLeft <= 0) {
          this.passwordsExhausted = true;
          break;
        }
        ctx.budget.passwordAttemptsLeft--;
      }
      try {
        const data = await this.extract(m, ctx, pw);
        this.goodPassword = pw;
        return { data };
      } catch (e) {
        const msg = e instanceof Error ? e.message : '';
        if (msg === zipjs.ERR_INVALID_PASSWORD || msg === zipjs.ERR_INVALID_CRC32 || msg === zipjs.ERR_INVALID_AUTHENTICATION_CODE) continue;
        if (e instanceof CapExceeded) return { findings: [this.capFinding(e, ctx, name)] };
        if (Date.now() > ctx.budget.deadline) {
          this.stopped = true;
          return { findings: [limitFinding(ctx, `time budget of ${ctx.limits.timeoutMs} ms exhausted`, name)] };
        }
        continue;
      }
    }
    this.unopened.push(name);
    return { findings: [] };
  }

  /** The ARCHIVE_ENCRYPTED_UNSCANNABLE finding for this archive, if members stayed closed. */
  encryptionFindings(ctx: ScanContext): Finding[] {
    if (this.unopened.length === 0) return [];
    const list = this.unopened.slice(0, 5).join(', ') + (this.unopened.length > 5 ? ', …' : '');
    const why =
      ctx.passwords.length === 0
        ? 'no candidate password in the message'
        : this.passwordsExhausted
          ? 'password attempts exhausted'
          : `none of ${ctx.passwords.length} candidate password(s) opened it`;
    return [
      finding(
        OFFICE_SYMBOLS.ARCHIVE_ENCRYPTED_UNSCANNABLE,
        ctx,
        `${this.unopened.length} encrypted entr${this.unopened.length === 1 ? 'y' : 'ies'} (${list}): ${why}`,
      ),
    ];
  }

  private capFinding(e: CapExceeded, ctx: ScanContext, name: string): Finding {
    if (e.reason === 'budget') {
      this.stopped = true;
      return limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, name);
    }
    return limitFinding(ctx, `entry inflates beyond ${ctx.limits.maxRatio}x its compressed size`, name);
  }

  private async extractOrExplain(m: ZipMember, ctx: ScanContext, password: string | undefined): Promise<{ data: Buffer } | { findings: Finding[] }> {
    try {
      return { data: await this.extract(m, ctx, password) };
    } catch (e) {
      if (e instanceof CapExceeded) return { findings: [this.capFinding(e, ctx, m.name)] };
      if (Date.now() > ctx.budget.deadline) {
        this.stopped = true;
        return { findings: [limitFinding(ctx, `time budget of ${ctx.limits.timeoutMs} ms exhausted`, m.name)] };
      }
      return { findings: [corruptFinding(ctx, `zip entry unreadable: ${errorText(e)}`, m.name)] };
    }
  }

  private async extract(m: ZipMember, ctx: ScanContext, password: string | undefined): Promise<Buffer> {
    const ratioCap = Math.max(RATIO_FLOOR, m.compressedSize * ctx.limits.maxRatio);
    const budgetCap = ctx.budget.bytesLeft;
    const cap = Math.min(ratioCap, budgetCap);
    if (password === undefined) {
      const small = readSmallMember(this.bytes, m, cap);
      if (small) {
        ctx.budget.bytesLeft = Math.max(0, ctx.budget.bytesLeft - small.length);
        return small;
      }
    }
    // the member's bytes as they inflate, into pages of their own (no list of chunks joined at the end)
    const data = new LeafBytes();
    let n = 0;
    const sink = new WritableStream<Uint8Array>({
      write(chunk) {
        n += chunk.length;
        if (n > cap) throw new CapExceeded(n, cap === budgetCap ? 'budget' : 'ratio');
        data.append(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      },
    });
    const signal = AbortSignal.timeout(Math.max(1, ctx.budget.deadline - Date.now()));
    try {
      await m.entry.getData(sink, { password, signal, checkCrc32: m.encrypted, useWebWorkers: false });
    } catch (e) {
      throw unwrapCap(e) ?? e;
    } finally {
      ctx.budget.bytesLeft = Math.max(0, ctx.budget.bytesLeft - Math.min(n, cap));
    }
    return data.finish();
  }
}

/**
 * A small unencrypted member (stored or deflated, at most SMALL_MEMBER bytes declared and within the
 * cap) read straight from the archive's bytes, inflated in one synchronous call. zip.js reads every
 * member through web streams over zlib's thread pool: for the small XML and VBA parts an Office
 * package is made of that machinery costs several times the inflating (a third of a scan's time,
 * most of it the main thread waiting). Undefined, for zip.js to read it the usual way, whenever
 * anything is unusual: the local header disagrees with the central directory (method, encryption),
 * the data lies outside the archive, the stream is corrupt, or it inflates to more than declared.
 */
function readSmallMember(bytes: Buffer, m: ZipMember, cap: number): Buffer | undefined {
  const e = m.entry;
  if (m.encrypted || m.size < 1 || m.size > Math.min(SMALL_MEMBER, cap) || (e.compressionMethod !== 0 && e.compressionMethod !== 8)) return undefined;
  const at = e.offset;
  if (!Number.isSafeInteger(at) || at < 0 || at + 30 > bytes.length || bytes.readUInt32LE(at) !== LOCAL_HEADER) return undefined;
  if (bytes.readUInt16LE(at + 6) & 1 || bytes.readUInt16LE(at + 8) !== e.compressionMethod) return undefined;
  const start = at + 30 + bytes.readUInt16LE(at + 26) + bytes.readUInt16LE(at + 28);
  const end = start + m.compressedSize;
  if (end > bytes.length) return undefined;
  const raw = bytes.subarray(start, end);
  if (e.compressionMethod === 0) return raw.length <= m.size ? Buffer.from(raw) : undefined;
  try {
    return inflateRawSync(raw, { maxOutputLength: m.size });
  } catch {
    return undefined; // corrupt, or more than declared: zip.js reads it under the cap and says what is wrong
  }
}

function unwrapCap(e: unknown): CapExceeded | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    if (cur instanceof CapExceeded) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Scans a zip: OOXML packages go to the OOXML scanner, other archives have every member scanned. */
export async function scanZip(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  let archive: ZipArchive;
  try {
    archive = await ZipArchive.open(bytes);
  } catch (e) {
    if (e instanceof Error && e.message === zipjs.ERR_ENCRYPTED_CENTRAL_DIRECTORY) {
      return [finding(OFFICE_SYMBOLS.ARCHIVE_ENCRYPTED_UNSCANNABLE, ctx, 'zip with an encrypted central directory')];
    }
    return [corruptFinding(ctx, `zip unreadable: ${errorText(e)}`)];
  }
  try {
    if (archive.find('[Content_Types].xml')) return await scanOoxml(archive, ctx, scanBlob);
    const findings: Finding[] = [];
    // a .jar is already a finding by its name
    const jar =
      effectiveExtension(ctx.declared?.filename) === 'jar'
        ? null
        : javaArchiveFinding(
            archive.members.map((m) => m.name),
            ctx,
          );
    if (jar) findings.push(jar);
    for (const m of archive.members) {
      if (archive.stopped) break;
      const r = await archive.read(m, ctx);
      if ('findings' in r) {
        findings.push(...r.findings);
        continue;
      }
      // a member's own name is what the user sees when extracting: check it against its content too
      findings.push(...(await scanBlob(r.data, { ...child(ctx, m.name), declared: { filename: m.name } })));
    }
    findings.push(...archive.encryptionFindings(ctx));
    return findings;
  } finally {
    await archive.close();
  }
}
