// The Office/archive engine's dispatcher: one blob in, findings out. Sniffs the bytes (never the name),
// routes to the scanner of its kind, and checks the shared budget before every step so that zip bombs,
// deep nesting and slow inputs end as ARCHIVE_LIMIT findings. Never throws: a scanner's failure on bad
// input is an OFFICE_CORRUPT finding.
import type { Finding } from '../finding.js';
import { DEFAULT_OFFICE_LIMITS, newBudget, OFFICE_SYMBOLS, type BlobScanner, type OfficeLimits, type ScanBudget, type ScanContext } from './types.js';
import { budgetExceeded, corruptFinding, errorText, finding, limitFinding } from './c-util.js';
import { isOfficeKind, sniff, type Kind } from './sniff.js';
import { scanOle } from './ole.js';
import { scanZip } from './zip.js';
import { scanRtf } from './rtf.js';
import { scanMso } from './mso.js';
import { scanSylk } from './sylk.js';
import { scanOneNote } from './c-onenote.js';
import { scanMessageBlob } from './message.js';
import { scanTnef } from './tnef.js';
import { scanContainerKinds } from './containers.js';
import { dangerousTypeFindings } from './dangerous.js';
import { CONTAINER_LABELS } from './sniff-containers.js';

export { findPasswords } from './passwords.js';
export { sniff, type Kind } from './sniff.js';

/** Names and types that promise something which is not an Office document nor an archive. */
const NON_OFFICE_EXT = /\.(pdf|txt|text|log|jpe?g|png|gif|bmp|tiff?|webp|svg|ics|vcf|mp3|mp4|wav)$/i;
const NON_OFFICE_CT = /^(application\/pdf|text\/(plain|calendar|vcard)|image\/|audio\/|video\/)/i;
/** Non-macro OOXML names: a CFB/RTF/MHT/XML document behind them is not what the name says either. */
const OOXML_EXT = /\.(docx|dotx|xlsx|xltx|pptx|potx|ppsx)$/i;
const ENCRYPTED_PACKAGE = Buffer.from('EncryptedPackage', 'utf16le');

function mismatch(kind: Kind, bytes: Buffer, ctx: ScanContext): Finding | null {
  const d = ctx.declared;
  if (!d || !isOfficeKind(kind)) return null;
  const name = d.filename ?? '';
  const ct = (d.contentType ?? '').split(';')[0].trim();
  if (NON_OFFICE_EXT.test(name) || NON_OFFICE_CT.test(ct)) {
    return finding(OFFICE_SYMBOLS.TYPE_MISMATCH, ctx, `declared ${name && NON_OFFICE_EXT.test(name) ? name : ct} but the content is ${kindLabel(kind)}`);
  }
  // an encrypted OOXML package is a CFB holding EncryptedPackage: that is what a .docx looks like then
  if (OOXML_EXT.test(name) && kind !== 'zip' && !(kind === 'cfb' && bytes.includes(ENCRYPTED_PACKAGE))) {
    return finding(OFFICE_SYMBOLS.TYPE_MISMATCH, ctx, `named ${name} (OOXML) but the content is ${kindLabel(kind)}`);
  }
  return null;
}

function kindLabel(kind: Kind): string {
  return (
    {
      cfb: 'an OLE2 compound file',
      onenote: 'a OneNote file',
      lnk: 'a Windows shortcut',
      zip: 'a zip/OOXML archive',
      rtf: 'RTF',
      sylk: 'SYLK',
      word2003: 'Word 2003 XML',
      flatopc: 'Flat OPC XML',
      mht: 'MHTML',
      activemime: 'ActiveMime',
      message: 'an e-mail message',
      tnef: 'TNEF (winmail.dat)',
      ...CONTAINER_LABELS,
      other: 'unknown',
    } as const
  )[kind];
}

export const scanBlob: BlobScanner = async (bytes, ctx) => {
  if (ctx.depth > ctx.limits.maxDepth) return [limitFinding(ctx, `nesting deeper than ${ctx.limits.maxDepth}`)];
  const over = budgetExceeded(ctx);
  if (over) return [limitFinding(ctx, over)];
  const findings: Finding[] = [];
  try {
    const kind = sniff(bytes);
    const mm = mismatch(kind, bytes, ctx);
    if (mm) findings.push(mm);
    switch (kind) {
      case 'cfb':
        findings.push(...(await scanOle(bytes, ctx, scanBlob)));
        break;
      case 'zip':
        findings.push(...(await scanZip(bytes, ctx, scanBlob)));
        break;
      case 'rtf':
        findings.push(...(await scanRtf(bytes, ctx, scanBlob)));
        break;
      case 'word2003':
      case 'flatopc':
      case 'activemime':
        findings.push(...(await scanMso(bytes, kind, ctx, scanBlob)));
        break;
      case 'sylk':
        findings.push(...(await scanSylk(bytes, ctx)));
        break;
      case 'onenote':
        findings.push(...(await scanOneNote(bytes, ctx, scanBlob)));
        break;
      case 'mht':
      case 'message':
        findings.push(...(await scanMessageBlob(bytes, kind, ctx, scanBlob)));
        break;
      case 'tnef':
        findings.push(...(await scanTnef(bytes, ctx, scanBlob)));
        break;
      case 'lnk':
      case 'other':
        break;
    }
    // the waves after macros: dangerous file types by content and name, gzip/tar/7z/RAR/ISO/... (containers.ts)
    findings.push(...dangerousTypeFindings(bytes, kind, ctx));
    findings.push(...(await scanContainerKinds(bytes, kind, ctx, scanBlob)));
  } catch (e) {
    if (Date.now() > ctx.budget.deadline) findings.push(limitFinding(ctx, `time budget of ${ctx.limits.timeoutMs} ms exhausted`));
    else findings.push(corruptFinding(ctx, `unparsable: ${errorText(e)}`));
  }
  return findings;
};

/**
 * Entry point for one MIME attachment: a root context named after the file (or `path`, its place in
 * the message), spending `budget` (the message's share; a fresh budget when the attachment is alone).
 */
export async function scanAttachment(
  bytes: Buffer,
  filename: string | undefined,
  contentType: string | undefined,
  /** null: the message's passwords are not known yet (ScanContext.passwordsLater) */
  passwords: string[] | null,
  limits: OfficeLimits = DEFAULT_OFFICE_LIMITS,
  path?: string[],
  budget: ScanBudget = newBudget(limits),
): Promise<Finding[]> {
  const ctx: ScanContext = {
    path: path?.length ? path : [filename || 'attachment'],
    depth: 0,
    budget,
    limits,
    passwords: [...new Set(passwords ?? [])],
    ...(passwords === null ? { passwordsLater: true } : {}),
    declared: { filename, contentType },
  };
  return scanBlob(bytes, ctx);
}
