// SYLK (.slk, often renamed .xls/.csv): Excel opens it as a spreadsheet and, with an `O;…;E` options
// record, as an Excel 4.0 macro sheet whose `C;…;E<formula>` cells run (research §3.6).
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS, partOf, type ScanContext } from './types.js';
import { finding } from './c-util.js';
import { analyzeXlm, xlmAutoexec } from './xlm.js';

const MAX_LINES = 200_000;
/** functions that only make sense in a macro sheet, or that run code / DDE from a worksheet */
const MACRO_FUNCTION =
  /\b(EXEC|CALL|REGISTER|RUN|HALT|FOPEN|FWRITE|FWRITELN|URLDownloadToFile|SHELL|FORMULA(?:\.FILL)?|GOTO|WHILE|NEXT|SET\.VALUE|SET\.NAME|ALERT|RETURN|ON\.TIME|APP\.MAXIMIZE|GET\.WORKSPACE)\s*\(/i;
const DDE = /^=?\s*[\w.-]+\|'?[^']*'?!/;

export interface SylkInfo {
  macroSheet: boolean;
  formulas: string[];
  autoNames: string[];
}

/** Options, formula cells and auto-run names of a SYLK file. */
export function parseSylk(text: string): SylkInfo {
  const info: SylkInfo = { macroSheet: false, formulas: [], autoNames: [] };
  const lines = text.split(/\r?\n|\r/, MAX_LINES);
  for (const line of lines) {
    const fields = splitFields(line);
    const rec = fields[0];
    if (rec === 'O') {
      // options: ';E' = macro sheet (Excel 4.0); ';M' is also seen in droppers' option records
      if (fields.slice(1).some((f) => f === 'E' || f === 'M')) info.macroSheet = true;
    } else if (rec === 'C' || rec === 'F') {
      for (const f of fields.slice(1)) {
        if (f.startsWith('E') && f.length > 1) info.formulas.push(f.slice(1).startsWith('=') ? f.slice(1) : `=${f.slice(1)}`);
      }
    } else if (rec === 'NN') {
      const name =
        fields
          .slice(1)
          .find((f) => f.startsWith('N'))
          ?.slice(1) ?? '';
      if (/^(_xlnm\.)?auto_(open|close|activate|deactivate)/i.test(name)) info.autoNames.push(name);
    }
  }
  return info;
}

/** SYLK fields are separated by ';', a literal ';' being written ';;'. */
function splitFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === ';') {
      if (line[i + 1] === ';') {
        cur += ';';
        i++;
      } else {
        out.push(cur);
        cur = '';
      }
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export async function scanSylk(bytes: Buffer, ctx: ScanContext): Promise<Finding[]> {
  const info = parseSylk(bytes.toString('latin1'));
  if (info.formulas.length === 0) {
    return info.macroSheet || info.autoNames.length ? [finding(OFFICE_SYMBOLS.OFFICE_VBA_PROJECT_EMPTY, ctx, 'SYLK macro sheet without formulas')] : [];
  }
  const macroish = info.macroSheet || info.autoNames.length > 0 || info.formulas.some((f) => MACRO_FUNCTION.test(f) || DDE.test(f));
  if (!macroish) return []; // a plain spreadsheet with ordinary formulas
  const out = analyzeXlm(info.formulas, partOf(ctx));
  if (!out.some((f) => f.symbol === OFFICE_SYMBOLS.OFFICE_XLM_MACRO)) {
    out.unshift(finding(OFFICE_SYMBOLS.OFFICE_XLM_MACRO, ctx, `SYLK ${info.macroSheet ? 'macro sheet' : 'sheet'} with ${info.formulas.length} formula(s)`));
  }
  if (!out.some((f) => f.symbol === OFFICE_SYMBOLS.OFFICE_MACRO_AUTOEXEC)) out.push(...xlmAutoexec(info.autoNames, partOf(ctx)));
  return out;
}
