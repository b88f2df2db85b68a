// OneNote (.one): embedded files are FileDataStoreObject blocks (GUID, u64 cbLength at +16, data at
// +36 — research §3.8); each is scanned through the dispatcher (a .one carrying a .docm/.xls...).
// Pictures pasted into a page are stored the same way; any other embedded file is what the 2023
// OneNote waves used (an .hta, .wsf, .bat or .lnk behind a "double-click to view" button), so it is
// an ONENOTE_EMBEDDED_FILE finding whatever it turns out to be.
import type { Finding } from '../finding.js';
import { child, OFFICE_SYMBOLS, type BlobScanner, type ScanContext } from './types.js';
import { finding, limitFinding, spendBytes } from './c-util.js';

const FILE_DATA_STORE_OBJECT = Buffer.from([0xe7, 0x16, 0xe3, 0xbd, 0x65, 0x26, 0x11, 0x45, 0xa4, 0xc4, 0x8d, 0x4d, 0x0b, 0x7a, 0x9e, 0xac]);
const MAX_OBJECTS = 200;

/** Picture formats OneNote stores for pasted and printed-out images (and their thumbnails). */
function isPicture(b: Buffer): boolean {
  const at = (off: number, ...m: number[]) => b.length >= off + m.length && m.every((x, i) => b[off + i] === x);
  return (
    at(0, 0x89, 0x50, 0x4e, 0x47) || // PNG
    at(0, 0xff, 0xd8, 0xff) || // JPEG
    at(0, 0x47, 0x49, 0x46, 0x38) || // GIF
    at(0, 0x42, 0x4d) || // BMP
    at(0, 0x49, 0x49, 0x2a, 0x00) || // TIFF
    at(0, 0x4d, 0x4d, 0x00, 0x2a) ||
    at(40, 0x20, 0x45, 0x4d, 0x46) || // EMF (" EMF" signature in its header)
    at(0, 0xd7, 0xcd, 0xc6, 0x9a) || // placeable WMF
    at(0, 0x52, 0x49, 0x46, 0x46) // RIFF (WebP)
  );
}

export async function scanOneNote(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  let at = bytes.indexOf(FILE_DATA_STORE_OBJECT, 16);
  let n = 0;
  while (at >= 0 && n < MAX_OBJECTS) {
    n++;
    if (at + 36 > bytes.length) break;
    const len = Number(bytes.readBigUInt64LE(at + 16));
    const data = bytes.subarray(at + 36, Math.min(bytes.length, at + 36 + len));
    if (!spendBytes(ctx, data.length)) {
      findings.push(limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, `embedded#${n}`));
      break;
    }
    if (data.length > 0 && !isPicture(data)) {
      findings.push(finding(OFFICE_SYMBOLS.ONENOTE_EMBEDDED_FILE, ctx, `an embedded file of ${data.length} bytes that is not a picture`, `embedded#${n}`));
    }
    findings.push(...(await scanBlob(data, child(ctx, `embedded#${n}`))));
    at = bytes.indexOf(FILE_DATA_STORE_OBJECT, at + 36 + Math.max(0, data.length));
  }
  return findings;
}
