// OOXML packages (a zip with [Content_Types].xml): every member is sniffed and scanned whatever its
// name (a CFB member is a VBA candidate — research §3.5), Excel 4.0 macro sheets are read here, and a
// non-macro name (.docx/.xlsx/.pptx) on a macro-enabled package is a TYPE_MISMATCH.
import type { Finding } from '../finding.js';
import { child, OFFICE_SYMBOLS, partOf, type BlobScanner, type ScanContext } from './types.js';
import { finding, xmlElements, xmlUnescape } from './c-util.js';
import { sniff } from './sniff.js';
import { analyzeXlm, xlmAutoexec } from './xlm.js';
import type { ZipArchive, ZipMember } from './zip.js';

const MACRO_SHEET_DIR = /^\/?xl\/(macrosheets|intlmacrosheets)\//i;
const NON_MACRO_OOXML_EXT = /\.(docx|dotx|xlsx|xltx|pptx|potx|ppsx|sldx|vsdx)$/i;
const NON_MACRO_OOXML_CT = /^application\/vnd\.openxmlformats-officedocument\./i;
const MACRO_SYMBOLS = new Set<string>([
  OFFICE_SYMBOLS.OFFICE_MACRO,
  OFFICE_SYMBOLS.OFFICE_MACRO_AUTOEXEC,
  OFFICE_SYMBOLS.OFFICE_XLM_MACRO,
  OFFICE_SYMBOLS.OFFICE_VBA_PROJECT_EMPTY,
]);
const MAX_FORMULAS = 50_000;

/** Formula texts of an XML (Spreadsheet ML) macro sheet: every `<f>` element, shared formulas included. */
export function extractSheetFormulas(xml: string): string[] {
  const out: string[] = [];
  for (const el of xmlElements(xml, 'f', true)) {
    if (out.length >= MAX_FORMULAS) break;
    const text = xmlUnescape(el.body).trim();
    out.push(text.startsWith('=') ? text : `=${text}`);
  }
  return out;
}

// BIFF12 (.xlsb) formula cell records: BrtFmlaString, BrtFmlaNum, BrtFmlaBool, BrtFmlaError
const BIFF12_FORMULA_RECORDS = new Set([0x08, 0x09, 0x0a, 0x0b]);
// a few macro-only functions by their Ftab/Cetab index (ptgFunc/ptgFuncVar), enough to name the danger
const XLM_FUNCTIONS: Record<number, string> = { 110: 'EXEC', 149: 'REGISTER', 150: 'CALL', 54: 'HALT', 55: 'RETURN', 53: 'GOTO' };

/**
 * Formula cells of a binary (BIFF12) macro sheet, as approximate formula text: the macro functions and
 * string constants recognised in each formula's parsed tokens (a full BIFF12 formula decompiler is not
 * implemented). The count is exact; the text is a heuristic for analyzeXlm.
 */
export function extractBiff12Formulas(bin: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < bin.length && out.length < MAX_FORMULAS) {
    let id = 0;
    let b: number;
    for (let k = 0; k < 2 && i < bin.length; k++) {
      b = bin[i++]!;
      id |= (b & 0x7f) << (7 * k);
      if (!(b & 0x80)) break;
    }
    let size = 0;
    for (let k = 0; k < 4 && i < bin.length; k++) {
      b = bin[i++]!;
      size |= (b & 0x7f) << (7 * k);
      if (!(b & 0x80)) break;
    }
    if (i + size > bin.length) break;
    if (BIFF12_FORMULA_RECORDS.has(id)) out.push(describeBiff12Formula(bin.subarray(i, i + size)));
    i += size;
  }
  return out;
}

function describeBiff12Formula(rec: Buffer): string {
  const parts: string[] = [];
  for (let j = 0; j + 2 < rec.length; j++) {
    const t = rec[j];
    if ((t === 0x21 || t === 0x41 || t === 0x61) && j + 2 < rec.length) {
      const name = XLM_FUNCTIONS[rec.readUInt16LE(j + 1) & 0x7fff];
      if (name) parts.push(`${name}()`);
    } else if ((t === 0x22 || t === 0x42 || t === 0x62) && j + 3 < rec.length) {
      const name = XLM_FUNCTIONS[rec.readUInt16LE(j + 2) & 0x7fff];
      if (name) parts.push(`${name}()`);
    } else if (t === 0x17 && j + 3 < rec.length) {
      const cch = rec.readUInt16LE(j + 1);
      if (cch > 0 && cch < 256 && j + 3 + cch * 2 <= rec.length) {
        const s = rec.toString('utf16le', j + 3, j + 3 + cch * 2);
        if (/^[\x20-\x7e]+$/.test(s)) {
          parts.push(JSON.stringify(s));
          j += 2 + cch * 2;
        }
      }
    }
  }
  return parts.length ? `=${parts.join(',')}` : '=<binary formula>';
}

interface ContentTypes {
  text: string;
  macroSheetParts: Set<string>;
  vbaProject: boolean;
  macroEnabledMain: boolean;
}

function parseContentTypes(text: string): ContentTypes {
  const macroSheetParts = new Set<string>();
  for (const m of text.matchAll(/<(?:\w+:)?Override\b[^>]*>/gi)) {
    const tag = m[0];
    const name = /PartName\s*=\s*["']([^"']*)["']/i.exec(tag)?.[1];
    const ct = /ContentType\s*=\s*["']([^"']*)["']/i.exec(tag)?.[1] ?? '';
    if (name && /macrosheet/i.test(ct)) macroSheetParts.add(name.replace(/^\//, '').toLowerCase());
  }
  return {
    text,
    macroSheetParts,
    vbaProject: /application\/vnd\.ms-office\.vbaProject["'\s]/i.test(text),
    macroEnabledMain: /macroEnabled/i.test(text),
  };
}

async function scanMacroSheet(m: ZipMember, data: Buffer, ctx: ScanContext): Promise<Finding[]> {
  const isBin = /\.bin$/i.test(m.name) || !/^\ufeff?\s*</.test(data.toString('utf8', 0, 64));
  const formulas = isBin ? extractBiff12Formulas(data) : extractSheetFormulas(data.toString('utf8'));
  if (formulas.length === 0) {
    return [finding(OFFICE_SYMBOLS.OFFICE_VBA_PROJECT_EMPTY, ctx, `Excel 4.0 macro sheet without formulas${isBin ? ' (binary)' : ''}`, m.name)];
  }
  const part = partOf(ctx, m.name);
  const out = analyzeXlm(formulas, part);
  if (!out.some((f) => f.symbol === OFFICE_SYMBOLS.OFFICE_XLM_MACRO)) {
    out.unshift(
      finding(OFFICE_SYMBOLS.OFFICE_XLM_MACRO, ctx, `Excel 4.0 macro sheet with ${formulas.length} formula(s)${isBin ? ' (binary BIFF12)' : ''}`, m.name),
    );
  }
  return out;
}

export async function scanOoxml(archive: ZipArchive, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  let ct: ContentTypes = { text: '', macroSheetParts: new Set(), vbaProject: false, macroEnabledMain: false };
  const ctMember = archive.find('[Content_Types].xml')!;
  const ctRead = await archive.read(ctMember, ctx);
  if ('data' in ctRead) ct = parseContentTypes(ctRead.data.toString('utf8'));
  else findings.push(...ctRead.findings);

  let workbookXml = '';
  let xlmFound = false;
  for (const m of archive.members) {
    if (m === ctMember) continue;
    if (archive.stopped) break;
    const r = await archive.read(m, ctx);
    if ('findings' in r) {
      findings.push(...r.findings);
      continue;
    }
    const lname = m.name.replace(/^\//, '').toLowerCase();
    if (MACRO_SHEET_DIR.test(lname) || ct.macroSheetParts.has(lname)) {
      if (/\.rels$/i.test(lname)) continue;
      const xf = await scanMacroSheet(m, r.data, ctx);
      if (xf.some((f) => f.symbol === OFFICE_SYMBOLS.OFFICE_XLM_MACRO)) xlmFound = true;
      findings.push(...xf);
      continue;
    }
    if (lname === 'xl/workbook.xml') workbookXml = r.data.toString('utf8');
    if (sniff(r.data) !== 'other') findings.push(...(await scanBlob(r.data, child(ctx, m.name))));
  }
  findings.push(...archive.encryptionFindings(ctx));

  // Auto_Open/Auto_Close defined names run the macro sheet when the workbook opens
  if (xlmFound && !findings.some((f) => f.symbol === OFFICE_SYMBOLS.OFFICE_MACRO_AUTOEXEC)) {
    const names = [...workbookXml.matchAll(/<(?:\w+:)?definedName\b[^>]{0,2000}?\bname\s*=\s*["']([^"']*)["']/gi)].map((m) => m[1]);
    findings.push(...xlmAutoexec(names, partOf(ctx, 'xl/workbook.xml')));
  }

  // a .docx/.xlsx/.pptx name (or non-macro OOXML Content-Type) on a macro-enabled package
  const declared = ctx.declared;
  if (declared && (NON_MACRO_OOXML_EXT.test(declared.filename ?? '') || NON_MACRO_OOXML_CT.test(declared.contentType ?? ''))) {
    const macroContent = findings.some((f) => MACRO_SYMBOLS.has(f.symbol));
    if (macroContent || ct.vbaProject || ct.macroEnabledMain || ct.macroSheetParts.size > 0) {
      const why = macroContent
        ? 'holds macros'
        : ct.vbaProject
          ? 'declares a VBA project'
          : ct.macroSheetParts.size > 0
            ? 'declares a macro sheet'
            : 'has a macro-enabled main part';
      findings.push(finding(OFFICE_SYMBOLS.TYPE_MISMATCH, ctx, `named ${declared.filename ?? declared.contentType} but the package ${why}`));
    }
  }
  return findings;
}
