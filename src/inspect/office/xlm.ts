// Excel 4.0 (XLM) macro analysis on formula text, shared by BIFF (.xls, decoded by biff.ts) and
// OOXML macro sheets (xl/macrosheets/*.xml `<f>` text, called by the container side).
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS } from './types.js';

/** Functions worth naming in a finding; the first group also makes the sheet suspicious. */
const DANGEROUS = [
  'EXEC',
  'CALL',
  'REGISTER',
  'REGISTER.ID',
  'URLDownloadToFileA',
  'URLDownloadToFileW',
  'ShellExecuteA',
  'ShellExecuteW',
  'CreateProcessA',
  'WinExec',
  'VirtualAlloc',
  'WriteProcessMemory',
  'CreateThread',
  'FOPEN',
  'FWRITE',
  'FWRITELN',
  'FILE.DELETE',
];
const NOTABLE = [
  'RUN',
  'FORMULA',
  'FORMULA.FILL',
  'FORMULA.ARRAY',
  'HALT',
  'GOTO',
  'RETURN',
  'SET.VALUE',
  'SET.NAME',
  'DEFINE.NAME',
  'CHAR',
  'GET.WORKSPACE',
  'GET.DOCUMENT',
  'GET.WINDOW',
  'GET.CELL',
  'ON.TIME',
  'WAIT',
  'ALERT',
  'APP.MAXIMIZE',
  'CLOSE',
  'SAVE.AS',
  'SELECT',
  'EVALUATE',
  'INDIRECT',
  'WORKBOOK.HIDE',
  'FILES',
  'DIRECTORY',
  'SEND.KEYS',
];

const esc = (s: string) => s.replace(/\./g, '\\.');
const FUNC_RE = new RegExp(`(?<![\\w.])(${[...DANGEROUS, ...NOTABLE].map(esc).join('|')})\\s*\\(`, 'gi');
const CANON = new Map([...DANGEROUS, ...NOTABLE].map((n) => [n.toUpperCase(), n]));
const DANGER = new Set(DANGEROUS.map((n) => n.toUpperCase()));
/** Win32 APIs named as strings in CALL/REGISTER arguments */
const API_RE = /\b(URLDownloadToFile[AW]|ShellExecute[AW]|CreateProcess[AW]|WinExec|VirtualAlloc|WriteProcessMemory|CreateThread)\b/gi;
const URL_RE = /\b(?:https?|ftps?):\/\/[^\s"'<>()]{3,}/gi;
const EXE_RE =
  /\b(?:powershell|mshta|rundll32|regsvr32|certutil|wscript|cscript|bitsadmin)(?:\.exe)?\b|\bcmd(?:\.exe\b|\s+\/[ck]\b)|\b[\w-]+\.(?:exe|dll|scr|hta|vbs|ps1|bat)\b/gi;

function clip(s: string, max = 290): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * `formulas`: the formula cells of one macro sheet (or of all macro sheets of a workbook), as text
 * like `=EXEC("cmd /c ...")` (a leading `=` is optional). No formula, no finding: an empty macro
 * sheet is not a macro.
 */
export function analyzeXlm(formulas: string[], part: string): Finding[] {
  const cells = formulas.filter((f) => typeof f === 'string' && f.replace(/^=/, '').trim() !== '');
  if (cells.length === 0) return [];
  const funcs = new Map<string, number>();
  const iocs = new Set<string>();
  for (const f of cells) {
    for (const m of f.matchAll(FUNC_RE)) {
      const name = CANON.get(m[1].toUpperCase()) ?? m[1].toUpperCase();
      funcs.set(name, (funcs.get(name) ?? 0) + 1);
    }
    for (const m of f.matchAll(API_RE)) {
      const name = CANON.get(m[1].toUpperCase()) ?? m[1];
      if (!funcs.has(name)) funcs.set(name, 1);
    }
    for (const u of f.match(URL_RE) ?? []) iocs.add(u);
    for (const x of f.match(EXE_RE) ?? []) iocs.add(x.toLowerCase());
  }
  const names = [...funcs.keys()];
  const out: Finding[] = [];
  const fnText = names.length ? `: ${names.join(', ')}` : '';
  out.push({ symbol: OFFICE_SYMBOLS.OFFICE_XLM_MACRO, score: 0, part, detail: clip(`${cells.length} macro-sheet formula(s)${fnText}`) });
  const dangerous = names.filter((n) => DANGER.has(n.toUpperCase()));
  if (dangerous.length || iocs.size) {
    const bits = [];
    if (dangerous.length) bits.push(`XLM ${dangerous.join(', ')}`);
    if (iocs.size) bits.push(`IOCs: ${[...iocs].slice(0, 6).join(', ')}`);
    out.push({ symbol: OFFICE_SYMBOLS.OFFICE_MACRO_SUSPICIOUS, score: 0, part, detail: clip(bits.join('; ')) });
  }
  return out;
}

/** Defined names that run a macro sheet on open/close (`Auto_Open`, `Auto_Open2`, `_xlnm.Auto_Open`...). */
export function xlmAutoexec(names: string[], part: string): Finding[] {
  const auto = names.filter((n) => /^(?:_xlnm\.)?Auto_(?:Open|Close|Activate|Deactivate)/i.test(n));
  if (!auto.length) return [];
  return [{ symbol: OFFICE_SYMBOLS.OFFICE_MACRO_AUTOEXEC, score: 0, part, detail: clip(`XLM auto-run name: ${[...new Set(auto)].join(', ')}`) }];
}
