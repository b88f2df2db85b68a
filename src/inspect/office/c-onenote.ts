// OneNote (.one): embedded files are FileDataStoreObject blocks (GUID, u64 cbLength at +16, data at
// +36 — research §3.8); each is scanned through the dispatcher (a .one carrying a .docm/.xls...).
import type { Finding } from '../finding.js';
import { child, type BlobScanner, type ScanContext } from './types.js';
import { limitFinding, spendBytes } from './c-util.js';

const FILE_DATA_STORE_OBJECT = Buffer.from([0xe7, 0x16, 0xe3, 0xbd, 0x65, 0x26, 0x11, 0x45, 0xa4, 0xc4, 0x8d, 0x4d, 0x0b, 0x7a, 0x9e, 0xac]);
const MAX_OBJECTS = 200;

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
    findings.push(...(await scanBlob(data, child(ctx, `embedded#${n}`))));
    at = bytes.indexOf(FILE_DATA_STORE_OBJECT, at + 36 + Math.max(0, data.length));
  }
  return findings;
}
