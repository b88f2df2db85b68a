// Small helpers shared by the container scanners (zip, OOXML, RTF, MSO, SYLK): findings with default
// scores, budget checks. Scores are defaults; the policy's `verdict.symbols` overrides them.
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS, partOf, type ScanContext } from './types.js';

export const DEFAULT_SCORES: Record<string, number> = {
  [OFFICE_SYMBOLS.OFFICE_MACRO]: 8,
  [OFFICE_SYMBOLS.OFFICE_MACRO_AUTOEXEC]: 4,
  [OFFICE_SYMBOLS.OFFICE_MACRO_SUSPICIOUS]: 4,
  [OFFICE_SYMBOLS.OFFICE_XLM_MACRO]: 8,
  [OFFICE_SYMBOLS.OFFICE_VBA_PROJECT_EMPTY]: 1,
  [OFFICE_SYMBOLS.OFFICE_ENCRYPTED_UNSCANNABLE]: 5,
  [OFFICE_SYMBOLS.ARCHIVE_ENCRYPTED_UNSCANNABLE]: 5,
  [OFFICE_SYMBOLS.ARCHIVE_LIMIT]: 5,
  [OFFICE_SYMBOLS.OFFICE_CORRUPT]: 1,
  [OFFICE_SYMBOLS.TYPE_MISMATCH]: 4,
  [OFFICE_SYMBOLS.ARCHIVE_UNSUPPORTED]: 5,
  [OFFICE_SYMBOLS.FILE_EXECUTABLE]: 10,
  [OFFICE_SYMBOLS.FILE_INSTALLER]: 10,
  [OFFICE_SYMBOLS.FILE_JAVA_ARCHIVE]: 10,
  [OFFICE_SYMBOLS.FILE_SCRIPT]: 10,
  [OFFICE_SYMBOLS.FILE_HTML_APPLICATION]: 10,
  [OFFICE_SYMBOLS.FILE_CHM]: 10,
  [OFFICE_SYMBOLS.FILE_SHORTCUT]: 10,
  [OFFICE_SYMBOLS.FILE_DISK_IMAGE]: 5,
  [OFFICE_SYMBOLS.ONENOTE_EMBEDDED_FILE]: 5,
  [OFFICE_SYMBOLS.HTML_SMUGGLING]: 10,
};

export function finding(symbol: string, ctx: ScanContext, detail: string, ...more: string[]): Finding {
  return { symbol, score: DEFAULT_SCORES[symbol] ?? 0, part: partOf(ctx, ...more), detail };
}

export function limitFinding(ctx: ScanContext, detail: string, ...more: string[]): Finding {
  return finding(OFFICE_SYMBOLS.ARCHIVE_LIMIT, ctx, detail, ...more);
}

export function corruptFinding(ctx: ScanContext, detail: string, ...more: string[]): Finding {
  return finding(OFFICE_SYMBOLS.OFFICE_CORRUPT, ctx, detail, ...more);
}

/** Why the budget forbids going on, or null. */
export function budgetExceeded(ctx: ScanContext, now = Date.now()): string | null {
  if (now > ctx.budget.deadline) return `time budget of ${ctx.limits.timeoutMs} ms exhausted`;
  if (ctx.budget.keys.deferred) return 'left for the next turn'; // this scan's findings are dropped (key-cache.ts)
  if (ctx.budget.bytesLeft <= 0) return `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`;
  return null;
}

/** Spend `n` decompressed bytes; false (and nothing spent) when the budget cannot cover them. */
export function spendBytes(ctx: ScanContext, n: number): boolean {
  if (n > ctx.budget.bytesLeft) {
    ctx.budget.bytesLeft = 0;
    return false;
  }
  ctx.budget.bytesLeft -= n;
  return true;
}

export function errorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

export const CFB_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

/** Decode XML character entities in text content. */
export function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default: {
        const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
      }
    }
  });
}

/** Text of a possibly UTF-16 (BOM) document, for XML/MHT parsing. */
export function decodeText(bytes: Buffer, max = Infinity): string {
  const b = bytes.length > max ? bytes.subarray(0, max) : bytes;
  if (b[0] === 0xff && b[1] === 0xfe) return b.subarray(2).toString('utf16le');
  if (b[0] === 0xfe && b[1] === 0xff) {
    const sw = Buffer.from(b.subarray(2, 2 + ((b.length - 2) & ~1)));
    return sw.swap16().toString('utf16le');
  }
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return b.subarray(3).toString('utf8');
  // UTF-16 without BOM: '<\0?\0' pattern
  if (b.length >= 4 && b[0] === 0x3c && b[1] === 0 && b[2] !== 0 && b[3] === 0) return b.toString('utf16le');
  return b.toString('latin1');
}

/**
 * Elements `<prefix:localName attrs>body</prefix:localName>` in document order (self-closing ones
 * with an empty body when `selfClosing`). Linear in the text length: no backtracking regex over bodies.
 */
export function* xmlElements(text: string, localName: string, selfClosing = false): Generator<{ attrs: string; body: string }> {
  const open = new RegExp(`<((?:[\\w.-]+:)?${localName})(\\s[^>]{0,4000})?>`, 'gi');
  for (let m = open.exec(text); m; m = open.exec(text)) {
    const attrs = m[2] ?? '';
    if (attrs.endsWith('/')) {
      if (selfClosing) yield { attrs: attrs.slice(0, -1), body: '' };
      continue;
    }
    const close = `</${m[1]}>`;
    const end = text.indexOf(close, open.lastIndex);
    if (end < 0) return;
    yield { attrs, body: text.slice(open.lastIndex, end) };
    open.lastIndex = end + close.length;
  }
}
