// A message inside a container (an .eml in a zip, a forwarded message in a TNEF, an MHT document):
// walked by the same MIME walk as the message the gateway received (src/inspect/mime/), each leaf
// back through the dispatcher. MHT (Word's "single file web page", a MIME message with ActiveMime
// parts) gets the walk and Word's lenient reading (mso.ts) both; a part the two readings decode
// alike is scanned once.
import type { Finding } from '../finding.js';
import { type BlobScanner, type ScanContext } from './types.js';
import { decodeText, limitFinding, spendBytes } from './c-util.js';
import { scanMht } from './mso.js';
import { scanMessage } from '../mime/scan.js';

export async function scanMessageBlob(bytes: Buffer, kind: 'message' | 'mht', ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const result = await scanMessage(bytes, {
    // a header block cannot be larger than the blob it is in
    maxHeaderBytes: Math.max(1024 * 1024, bytes.length * 64),
    reread: () => Promise.resolve(bytes),
    scanLeaf: async (leaf, passwords) => {
      if (!spendBytes(ctx, leaf.bytes.length)) return [limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`, ...leaf.path)];
      return scanBlob(leaf.bytes, {
        ...ctx,
        path: [...ctx.path, ...leaf.path],
        depth: ctx.depth + 1,
        passwords: [...new Set([...ctx.passwords, ...(passwords ?? [])])],
        ...(ctx.passwordsLater || passwords === null ? { passwordsLater: true } : {}),
        declared: { filename: leaf.filename, contentType: leaf.contentType },
      });
    },
  });
  const findings = result.findings.map((f) =>
    f.part?.startsWith(ctx.path.join(' > ')) ? f : { ...f, part: [...ctx.path, ...(f.part ? [f.part] : [])].join(' > ') },
  );
  if (kind === 'mht') findings.push(...(await scanMht(decodeText(bytes), ctx, scanBlob, result.scanned)));
  return findings;
}
