// The engine's dispatch for the containers and file types of the waves after macros (called by
// index.ts after its own scanners): gzip, tar, the 7-Zip formats and disk images, archives nothing
// here reads, HTML smuggling, and the ISO 9660/UDF view of a blob that is also something else.
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS as S, type BlobScanner, type ScanContext } from './types.js';
import { finding } from './c-util.js';
import type { Kind } from './sniff.js';
import { CONTAINER_LABELS, opticalDescriptors } from './sniff-containers.js';
import { scanGzip } from './c-gzip.js';
import { scanTar } from './c-tar.js';
import { isSevenZipKind, scanSevenZip } from './c-sevenzip.js';
import { scanHtmlSmuggling } from './html-smuggling.js';

export async function scanContainerKinds(bytes: Buffer, kind: Kind, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  if (kind === 'gzip') findings.push(...(await scanGzip(bytes, ctx, scanBlob)));
  else if (kind === 'tar') findings.push(...(await scanTar(bytes, ctx, scanBlob)));
  else if (kind === 'ace') {
    findings.push(
      finding(
        S.ARCHIVE_UNSUPPORTED,
        ctx,
        `${CONTAINER_LABELS.ace}: no maintained library reads ACE (WinRAR dropped it after CVE-2018-20250), so it cannot be scanned`,
      ),
    );
  } else if (isSevenZipKind(kind)) findings.push(...(await scanSevenZip(bytes, kind, ctx, scanBlob)));
  else if (kind === 'other') findings.push(...(await scanHtmlSmuggling(bytes, ctx, scanBlob)));
  // a polyglot: a zip, a document or anything else that is an ISO/UDF image as well (Windows mounts an .iso)
  if (kind !== 'iso' && kind !== 'udf') {
    const optical = opticalDescriptors(bytes);
    if (optical.iso || optical.udf) {
      const as = optical.udf ? 'udf' : 'iso';
      findings.push(finding(S.FILE_DISK_IMAGE, ctx, `also ${CONTAINER_LABELS[as]} (a polyglot: the same bytes mount as a disk)`));
      findings.push(...(await scanSevenZip(bytes, as, ctx, scanBlob)));
    }
  }
  return findings;
}
