// 7z, RAR 4/5, ISO 9660, UDF, CAB, VHD/VHDX, raw volume images, xz, bzip2, LZH: listed and
// extracted by 7-Zip in WebAssembly (sevenzip-wasm.ts), every file back through the engine under the
// message's budget. The listing comes first: its sizes are checked against the byte, entry and ratio
// limits before anything is extracted, and the extraction itself is capped at the write (a header
// that lies about sizes gains nothing). Encrypted archives are opened with the passwords found in the
// message text, one password attempt from the budget each, as for zip.
import { createHash } from 'node:crypto';
import type { Finding } from '../finding.js';
import { child, OFFICE_SYMBOLS as S, type BlobScanner, type ScanContext } from './types.js';
import { budgetExceeded, corruptFinding, errorText, finding, limitFinding, spendBytes } from './c-util.js';
import { CONTAINER_LABELS, opticalDescriptors, type ContainerKind } from './sniff-containers.js';
import { RunStopped, SevenZipRun, HEAP_LIMIT, type ListedItem, type RunResult } from './sevenzip-wasm.js';

/** Below this many extracted bytes the ratio limit does not apply (as for zip). */
const RATIO_FLOOR = 1024 * 1024;
/** Given to 7-Zip when no password is being tried, so that it never asks for one. */
const NO_PASSWORD = 'mailmoat-no-password';

/** The 7-Zip format name for each kind (forcing it: 7-Zip otherwise picks by its own signature search). */
const FORMAT = {
  sevenzip: '7z',
  rar: 'rar',
  cab: 'cab',
  xz: 'xz',
  bzip2: 'bzip2',
  lzh: 'lzh',
  iso: 'iso',
  udf: 'udf',
  vhd: 'vhd',
  vhdx: 'vhdx',
} as const satisfies Partial<Record<ContainerKind, string>>;

export type SevenZipKind = keyof typeof FORMAT | 'fsimage';

export function isSevenZipKind(kind: string): kind is SevenZipKind {
  return kind in FORMAT || kind === 'fsimage';
}

function clip(s: string): string {
  return s.length > 160 ? `${s.slice(0, 160)}…` : s;
}

/** 7-Zip's error lines, for a finding's detail (its "ERROR: /archive : /archive" preamble left out). */
function why(r: RunResult): string {
  const lines = [...r.stderr, ...r.stdout]
    .map((l) => l.trim())
    .filter((l) => l && !l.includes(' = ') && !/^ERRORS?:$|^(ERROR: )?\/archive( : \/archive)?$/.test(l));
  const errors = lines.filter((l) => /error|unsupported|can ?not|unexpected|wrong|missing|volume|crc/i.test(l));
  const chosen = errors.length ? errors.slice(0, 2).join('; ') : `exit code ${r.code}`;
  return clip(chosen.replace(/^ERROR:\s*/i, '').replace(/\/archive\s*:?\s*/g, ''));
}

const ENCRYPTED_HEADERS = /encrypted archive|wrong password/i;
/** 7-Zip's words when an allocation fails (the heap may not grow past HEAP_LIMIT) */
const OUT_OF_MEMORY = /can'?t allocate|allocate required memory|not enough memory/i;
const SEVENZIP_AES = Buffer.from([0x06, 0xf1, 0x07, 0x01]);

/**
 * Whether the archive encrypts its file names (7z -mhe, RAR -hp), read from its own header: a
 * listing that fails for another reason (a corrupt header) must not be reported as encryption.
 */
export function namesEncrypted(bytes: Buffer, kind: ContainerKind): boolean {
  try {
    if (kind === 'sevenzip' && bytes.length >= 32) {
      const next = 32 + Number(bytes.readBigUInt64LE(12));
      const size = Number(bytes.readBigUInt64LE(20));
      return bytes[next] === 0x17 && bytes.subarray(next, next + size).includes(SEVENZIP_AES);
    }
    if (kind === 'rar' && bytes[6] === 0x01) {
      // RAR5: the archive encryption header (type 4) comes first, right after the signature
      let p = 12;
      while (bytes[p] & 0x80) p++;
      return bytes[p + 1] === 4;
    }
    if (kind === 'rar') return bytes[9] === 0x73 && (bytes.readUInt16LE(10) & 0x0080) !== 0; // RAR4 MHD_PASSWORD
  } catch {
    /* too short to say */
  }
  return false;
}
const UNSUPPORTED = /unsupported|can ?not open the file as|is not archive|unexpected end|missing volume|volume/i;

interface View {
  kind: ContainerKind;
  format: string | undefined;
  /** shown in the part path when an image has two views (UDF and ISO 9660 of one bridge image) */
  label?: string;
}

function viewsOf(bytes: Buffer, kind: SevenZipKind): View[] {
  if (kind === 'udf' && opticalDescriptors(bytes).iso) {
    // Windows mounts the UDF tree, other systems may show the ISO 9660 one: an attacker can make them differ
    return [
      { kind, format: 'udf' },
      { kind: 'iso', format: 'iso', label: 'ISO 9660 view' },
    ];
  }
  // 7-Zip's "rar" handler reads RAR 1.5-4.x only; RAR 5 is its own format
  if (kind === 'rar' && bytes[6] === 0x01) return [{ kind, format: 'rar5' }];
  return [{ kind, format: kind === 'fsimage' ? undefined : FORMAT[kind] }];
}

class Scan {
  readonly findings: Finding[] = [];
  /** contents already scanned (the second view of a bridge image repeats most files) */
  private readonly seen = new Set<string>();

  constructor(
    private readonly bytes: Buffer,
    private readonly ctx: ScanContext,
    private readonly scanBlob: BlobScanner,
  ) {}

  private cap(): number {
    return Math.min(this.ctx.budget.bytesLeft, Math.max(RATIO_FLOOR, this.bytes.length * this.ctx.limits.maxRatio));
  }

  private run(): Promise<SevenZipRun> {
    return SevenZipRun.create(this.bytes, { outputCap: this.cap(), deadline: this.ctx.budget.deadline });
  }

  /** Candidate passwords, each spending one attempt; stops when the budget has none left. */
  private *passwords(): Generator<string, 'exhausted' | 'none-left'> {
    for (const pw of this.ctx.passwords) {
      if (this.ctx.budget.passwordAttemptsLeft <= 0) return 'exhausted';
      if (budgetExceeded(this.ctx)) return 'exhausted';
      this.ctx.budget.passwordAttemptsLeft--;
      yield pw;
    }
    return 'none-left';
  }

  private unopened(label: string, what: string, outcome: 'exhausted' | 'none-left'): Finding {
    const n = this.ctx.passwords.length;
    const reason =
      n === 0
        ? 'no candidate password in the message'
        : outcome === 'exhausted'
          ? 'password attempts exhausted'
          : `none of ${n} candidate password(s) opened it`;
    return finding(S.ARCHIVE_ENCRYPTED_UNSCANNABLE, this.ctx, `${label} with ${what}: ${reason}`);
  }

  async view(view: View): Promise<void> {
    const { ctx } = this;
    const label = CONTAINER_LABELS[view.kind];
    // 1. the listing, with a password when the names themselves are encrypted (7z -mhe, RAR -hp)
    let password = NO_PASSWORD;
    let listed = (await this.run()).list(password, view.format);
    if (listed.result.code !== 0 && (namesEncrypted(this.bytes, view.kind) || ENCRYPTED_HEADERS.test(why(listed.result)))) {
      const tries = this.passwords();
      let next = tries.next();
      let opened = false;
      while (!next.done) {
        const attempt = (await this.run()).list(next.value, view.format);
        if (attempt.result.code === 0) {
          password = next.value;
          listed = attempt;
          opened = true;
          break;
        }
        next = tries.next();
      }
      if (!opened) {
        this.findings.push(this.unopened(label, 'encrypted file names', next.done ? next.value : 'none-left'));
        return;
      }
    }
    // an image whose listing ends in an error ("Unexpected end of archive": sizes that run past the
    // end) still lists its files: the budget checks below judge what they declare
    if (listed.result.code !== 0 && listed.items.length === 0) {
      const reason = listed.result.code === 'threw' ? `7-Zip stopped on an error reading it (${why(listed.result)})` : why(listed.result);
      if (OUT_OF_MEMORY.test(reason)) {
        this.findings.push(this.memoryFinding(label));
        return;
      }
      this.findings.push(
        UNSUPPORTED.test(reason)
          ? finding(S.ARCHIVE_UNSUPPORTED, ctx, `${label} that 7-Zip cannot read: ${reason}`)
          : corruptFinding(ctx, `${label} unreadable: ${reason}`),
      );
      return;
    }
    const files = listed.items.filter((i) => !i.folder);
    if (!this.withinBudget(files, label)) return;

    // 2. the extraction, with the first candidate password that opens the encrypted entries
    const encrypted = files.filter((f) => f.encrypted);
    let result: { run: SevenZipRun; r: RunResult } | undefined;
    let closed: string[] = [];
    if (encrypted.length > 0 && password === NO_PASSWORD) {
      const tries = this.passwords();
      let next = tries.next();
      while (!next.done) {
        const run = await this.run();
        const r = run.extract(next.value, view.format);
        if (r.code === 0) {
          result = { run, r };
          break;
        }
        next = tries.next();
      }
      if (!result) {
        closed = encrypted.map((f) => f.path);
        const list = closed.slice(0, 5).join(', ') + (closed.length > 5 ? ', …' : '');
        this.findings.push(
          this.unopened(label, `${closed.length} encrypted entr${closed.length === 1 ? 'y' : 'ies'} (${list})`, next.done ? next.value : 'none-left'),
        );
      }
    }
    if (!result) {
      // no encryption, the password that opened the names, or the unencrypted entries of a mixed archive
      const run = await this.run();
      result = { run, r: run.extract(password, view.format) };
      if (result.r.code !== 0 && closed.length === 0) {
        const reason = why(result.r);
        if (OUT_OF_MEMORY.test(reason)) this.findings.push(this.memoryFinding(label));
        else
          this.findings.push(
            UNSUPPORTED.test(reason) && !/crc|data error/i.test(reason)
              ? finding(S.ARCHIVE_UNSUPPORTED, ctx, `${label}: 7-Zip could not extract everything: ${reason}`)
              : corruptFinding(ctx, `${label}: extraction failed: ${reason}`),
          );
      }
    }
    await this.scanExtracted(result.run, new Set(closed), view);
  }

  private memoryFinding(label: string): Finding {
    return limitFinding(this.ctx, `${label} needs more than ${HEAP_LIMIT / 1024 / 1024} MB of memory to unpack (a dictionary that large is a bomb)`);
  }

  /** Entry count, declared bytes and ratio, before anything is unpacked. */
  private withinBudget(files: ListedItem[], label: string): boolean {
    const { ctx } = this;
    if (files.length > ctx.budget.entriesLeft) {
      this.findings.push(limitFinding(ctx, `${label} lists ${files.length} files, more than the ${ctx.budget.entriesLeft} entries left in the budget`));
      return false;
    }
    const declared = files.reduce((s, f) => s + (f.size ?? 0), 0);
    if (declared > ctx.budget.bytesLeft) {
      const big = files.reduce((a, b) => ((b.size ?? 0) > (a.size ?? 0) ? b : a));
      this.findings.push(
        limitFinding(ctx, `${label} declares ${declared} bytes (${big.path}: ${big.size}), more than the ${ctx.budget.bytesLeft} left in the budget`),
      );
      return false;
    }
    if (declared > RATIO_FLOOR && declared / Math.max(1, this.bytes.length) > ctx.limits.maxRatio) {
      this.findings.push(
        limitFinding(ctx, `${label} declares ${declared} bytes, a ratio of ${Math.round(declared / this.bytes.length)} > ${ctx.limits.maxRatio}`),
      );
      return false;
    }
    return true;
  }

  private async scanExtracted(run: SevenZipRun, closed: Set<string>, view: View): Promise<void> {
    const { ctx } = this;
    for (const file of run.files()) {
      if (closed.has(file.path)) continue; // a failed decryption leaves garbage behind
      const over = budgetExceeded(ctx);
      if (over) {
        this.findings.push(limitFinding(ctx, over, file.path));
        return;
      }
      if (ctx.budget.entriesLeft <= 0) {
        this.findings.push(limitFinding(ctx, `entry budget of ${ctx.limits.maxEntries} exhausted`, file.path));
        return;
      }
      ctx.budget.entriesLeft--;
      if (!spendBytes(ctx, file.data.length)) {
        this.findings.push(limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, file.path));
        return;
      }
      const hash = createHash('sha256').update(file.data).digest('hex');
      if (this.seen.has(hash)) continue;
      this.seen.add(hash);
      const where = view.label ? child(ctx, view.label) : ctx;
      const base = file.path.replace(/^.*\//, '');
      this.findings.push(...(await this.scanBlob(file.data, { ...child(where, file.path), depth: ctx.depth + 1, declared: { filename: base } })));
    }
  }
}

/** Lists and extracts an archive or image with 7-Zip, and scans every file in it. */
export async function scanSevenZip(bytes: Buffer, kind: SevenZipKind, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const scan = new Scan(bytes, ctx, scanBlob);
  for (const view of viewsOf(bytes, kind)) {
    try {
      await scan.view(view);
    } catch (e) {
      if (e instanceof RunStopped) {
        scan.findings.push(scanStopFinding(e, ctx, CONTAINER_LABELS[view.kind], bytes.length));
        ctx.budget.bytesLeft = Math.max(0, ctx.budget.bytesLeft - e.written);
        break;
      }
      scan.findings.push(corruptFinding(ctx, `${CONTAINER_LABELS[view.kind]} unreadable: ${errorText(e)}`));
    }
  }
  return scan.findings;
}

function scanStopFinding(e: RunStopped, ctx: ScanContext, label: string, size: number): Finding {
  if (e.reason === 'time') return limitFinding(ctx, `time budget of ${ctx.limits.timeoutMs} ms exhausted in ${label}`);
  if (e.reason === 'memory') return limitFinding(ctx, `${label} needs more than ${HEAP_LIMIT / 1024 / 1024} MB of memory to unpack`);
  const ratioCap = Math.max(RATIO_FLOOR, size * ctx.limits.maxRatio);
  return ratioCap < ctx.budget.bytesLeft
    ? limitFinding(ctx, `${label} inflates beyond ${ctx.limits.maxRatio}x its size`)
    : limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted in ${label}`);
}
