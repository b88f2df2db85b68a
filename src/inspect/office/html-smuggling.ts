// HTML smuggling: an HTML (or SVG) attachment whose script carries a file inside itself (base64, a
// char-code list) and has the browser write it to disk (a Blob through createObjectURL and an
// anchor's download attribute, msSaveOrOpenBlob, a data: URI with download). The proxy sees no
// archive at all, only text. All three signs must be there: a payload, the assembly, the download.
// An HTML newsletter (data: images, tracking links) or a report with a "download CSV" button
// (a Blob, but built from the page, with no payload) is not smuggling. The largest payload that
// decodes is scanned as a file in its own right.
import type { Finding } from '../finding.js';
import { child, OFFICE_SYMBOLS as S, type BlobScanner, type ScanContext } from './types.js';
import { finding, limitFinding, spendBytes } from './c-util.js';

/** Text beyond this is not looked at (smuggling pages are a few MB at most; the byte budget still applies). */
const MAX_TEXT = 32 * 1024 * 1024;
/** a zip holding one shortcut is ~250 bytes: 336 base64 characters */
const MIN_BASE64 = 256;
const MIN_CHARCODES = 128;
const MIN_DATA_URI = 256;

const SAVE = /\bmsSaveOrOpenBlob\b|\bmsSaveBlob\b|\bsaveAs\s*\(/;
const OBJECT_URL = /\bcreateObjectURL\b/;
const DOWNLOAD = /\.download\s*=|\bdownload\s*=|setAttribute\s*\(\s*["']download["']|\[\s*["']download["']\s*\]/i;
const CLICK = /\.click\s*\(|dispatchEvent\s*\(|location(?:\.href)?\s*=|window\.open\s*\(/;
const ASSEMBLE = /\bnew\s+Blob\s*\(|\batob\s*\(|fromCharCode|\bUint8Array\b|charCodeAt|\bFile\s*\(\s*\[/;
const DATA_HREF = /\bhref\s{0,20}=\s{0,20}["']?data:[^;,"'>]{0,100}?(;base64)?,([^"'\s>]*)/i;

const MEDIA_DATA_URI = /data:(?:image|font|audio|video)\/[\w.+-]{1,40};base64,$/i;

const isBase64Char = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61;
const isCharCodeChar = (c: number) => (c >= 48 && c <= 57) || c === 44 || c === 32 || c === 9 || c === 10 || c === 13;

/**
 * Maximal runs of characters of one class, at least `min` long: one linear pass (a regex such as
 * /[A-Za-z0-9+/]{1024,}/ rescans every shorter run from each of its positions).
 */
function* runs(text: string, inClass: (c: number) => boolean, min: number): Generator<{ run: string; at: number }> {
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const inside = i < text.length && inClass(text.charCodeAt(i));
    if (inside && start < 0) start = i;
    else if (!inside && start >= 0) {
      if (i - start >= min) yield { run: text.slice(start, i), at: start };
      start = -1;
    }
  }
}

/** Anchor tags, found with indexOf (a tag pattern with nested quantifiers backtracks on hostile input). */
function* anchors(text: string): Generator<string> {
  let at = 0;
  for (;;) {
    const open = text.indexOf('<a', at);
    if (open < 0) return;
    const close = text.indexOf('>', open);
    if (close < 0) return;
    if (/\s/.test(text[open + 2] ?? '')) yield text.slice(open, close + 1);
    at = close + 1;
  }
}

/** Whether the bytes are markup a browser renders with scripts: HTML, XHTML, SVG. */
export function isMarkup(bytes: Buffer): boolean {
  const head = bytes
    .subarray(0, 1024)
    .toString('latin1')
    .replace(/^\ufeff|^\xef\xbb\xbf/, '')
    .trimStart();
  return head.startsWith('<') && /<(!doctype html|html|head|body|script|svg|a\s|meta|div|p\b)/i.test(bytes.subarray(0, 8192).toString('latin1'));
}

function textOf(bytes: Buffer): string {
  const b = bytes.length > MAX_TEXT ? bytes.subarray(0, MAX_TEXT) : bytes;
  if (b[0] === 0xff && b[1] === 0xfe) return b.subarray(2).toString('utf16le');
  return b.toString('latin1');
}

/** String literals split to dodge a pattern ("TVqQ" + "AAMA") are joined back. */
function joinLiterals(text: string): string {
  return text.replace(/(["'`])\s{0,40}\+\s{0,40}\1/g, '');
}

function decodeBase64(s: string): Buffer | null {
  const clean = s.replace(/[^A-Za-z0-9+/=]/g, '');
  if (clean.length < MIN_BASE64) return null;
  const b = Buffer.from(clean, 'base64');
  return b.length >= 64 ? b : null;
}

function decodeCharCodes(s: string): Buffer | null {
  const nums = s.split(/\s*,\s*/).map(Number);
  if (nums.length < MIN_CHARCODES || nums.some((n) => !(n >= 0 && n <= 255))) return null;
  return Buffer.from(nums);
}

/** The file name the page gives its download, if it says one. */
function downloadName(text: string): string | undefined {
  const m =
    /\.download\s*=\s*["'`]([^"'`\n]{1,120})["'`]/.exec(text) ??
    /setAttribute\s*\(\s*["']download["']\s*,\s*["'`]([^"'`\n]{1,120})["'`]/.exec(text) ??
    /msSave(?:OrOpen)?Blob\s*\([^,]{1,200},\s*["'`]([^"'`\n]{1,120})["'`]/.exec(text) ??
    /\bdownload\s*=\s*["']([^"'\n]{1,120})["']/i.exec(text);
  return m?.[1];
}

export async function scanHtmlSmuggling(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  if (!isMarkup(bytes)) return [];
  const text = joinLiterals(textOf(bytes));
  const payloads: { data: Buffer; how: string }[] = [];

  // a data: URI behind an anchor with a download attribute needs no script at all
  for (const tag of anchors(text)) {
    if (!/\sdownload\b/i.test(tag)) continue;
    const m = DATA_HREF.exec(tag);
    if (!m || m[2].length < MIN_DATA_URI) continue;
    const data = m[1] ? decodeBase64(m[2]) : Buffer.from(decodeURIComponent(m[2].replace(/%(?![0-9a-f]{2})/gi, '%25')), 'latin1');
    if (data) payloads.push({ data, how: 'a data: URI with a download attribute' });
  }

  const saves = SAVE.test(text) || (OBJECT_URL.test(text) && (DOWNLOAD.test(text) || CLICK.test(text)));
  if (saves && ASSEMBLE.test(text)) {
    for (const { run, at } of runs(text, isBase64Char, MIN_BASE64)) {
      // an inline picture or font is page content, not a payload (a report with a logo and a CSV button)
      if (MEDIA_DATA_URI.test(text.slice(Math.max(0, at - 80), at))) continue;
      const data = decodeBase64(run);
      if (data) payloads.push({ data, how: `a ${Math.round(run.length / 1024)} KB base64 payload` });
    }
    for (const { run } of runs(text, isCharCodeChar, MIN_CHARCODES * 2)) {
      const data = decodeCharCodes(run.trim().replace(/^,|,$/g, ''));
      if (data) payloads.push({ data, how: `a ${data.length}-byte char-code payload` });
    }
  }
  if (payloads.length === 0) return [];

  const largest = payloads.reduce((a, b) => (b.data.length > a.data.length ? b : a));
  const api = SAVE.exec(text)?.[0].replace(/\s*\($/, '') ?? (OBJECT_URL.test(text) ? 'createObjectURL' : 'download');
  const name = downloadName(text);
  const findings: Finding[] = [finding(S.HTML_SMUGGLING, ctx, `builds a file from ${largest.how} and saves it${name ? ` as ${name}` : ''} (${api})`)];
  if (!spendBytes(ctx, largest.data.length)) {
    findings.push(limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, name ?? 'smuggled file'));
    return findings;
  }
  const label = name ?? 'smuggled file';
  findings.push(...(await scanBlob(largest.data, { ...child(ctx, label), declared: name ? { filename: name } : undefined })));
  return findings;
}
