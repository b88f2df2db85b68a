// Keyword analysis of VBA source: auto-run triggers and suspicious behaviour, olevba-style but with
// fewer false positives than mraptor: a trigger must be *declared* (Sub/Function), `*_Click` and
// other user-driven events are not auto-run, strings and comments do not declare anything, and the
// VBA `Call` statement is not the XLM CALL function.
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS } from './types.js';

export interface VbaModuleText {
  name: string;
  code: string;
}

const AUTOEXEC_NAMES = new Set(
  [
    // Word
    'AutoExec',
    'AutoOpen',
    'AutoClose',
    'AutoExit',
    'AutoNew',
    'DocumentOpen',
    'DocumentBeforeClose',
    'DocumentChange',
    'Document_Open',
    'Document_Close',
    'Document_New',
    'Document_BeforeClose',
    'Document_ContentControlOnEnter',
    'NewDocument',
    // Excel
    'Auto_Open',
    'Auto_Close',
    'Auto_Ope',
    'Workbook_Open',
    'Workbook_Activate',
    'Workbook_Close',
    'Workbook_BeforeClose',
    'Workbook_Deactivate',
    'Workbook_WindowActivate',
    'Worksheet_Calculate',
    'Worksheet_Activate',
    // PowerPoint / Publisher / Access-ish
    'Auto_Exec',
    'OnSlideShowPageChange',
    'OnSlideShowTerminate',
  ].map((s) => s.toLowerCase()),
);

/** ActiveX events that fire without user action when the document is opened (Emotet: InkPicture1_Painted, Frame1_Layout). */
const AUTO_EVENT_SUFFIX =
  /_(?:Open|Painted|Painting|Layout|Resize|GotFocus|BeforeNavigate2|BeforeScriptExecute|DocumentComplete|DownloadBegin|DownloadComplete|FileDownload|NavigateComplete2|NavigateError|ProgressChange|PropertyChange|SetSecureLockIcon|StatusTextChange|TitleChange|OnConnecting)$/i;

/** Word runs `Main` of a module named like an auto macro. */
const AUTO_MODULE_NAMES = new Set(['autoexec', 'autoopen', 'autoclose', 'autoexit', 'autonew']);

interface Cleaned {
  /** comments removed, strings kept */
  noComments: string;
  /** comments removed, string contents blanked to "" */
  noStrings: string;
}

/** Joins ` _` continuations, strips comments (' and Rem) outside strings, optionally blanks strings. */
export function cleanVba(code: string): Cleaned {
  const joined = code.replace(/\r\n?/g, '\n').replace(/[ \t]_[ \t]*\n/g, ' ');
  const a: string[] = [];
  const b: string[] = [];
  for (const line of joined.split('\n')) {
    let inStr = false;
    let outA = '';
    let outB = '';
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (c === '"') {
        inStr = !inStr;
        outA += c;
        outB += c;
        continue;
      }
      if (!inStr) {
        if (c === "'") break;
        if ((c === 'R' || c === 'r') && /^rem(?:\s|$)/i.test(line.slice(i)) && /(?:^|:)\s*$/.test(line.slice(0, i))) break;
      }
      outA += c;
      outB += inStr ? '' : c;
    }
    a.push(outA);
    b.push(outB);
  }
  return { noComments: a.join('\n'), noStrings: b.join('\n') };
}

const DECL = /^[ \t]*(?:(?:Public|Private|Friend)[ \t]+)?(?:Static[ \t]+)?(?:Sub|Function)[ \t]+([A-Za-z_][\w]*)/gim;

/** Declared procedure names (Sub/Function/Property). */
export function procedureNames(code: string): string[] {
  const { noStrings } = cleanVba(code);
  const re = /^[ \t]*(?:(?:Public|Private|Friend)[ \t]+)?(?:Static[ \t]+)?(?:Sub|Function|Property[ \t]+(?:Get|Let|Set))[ \t]+([A-Za-z_][\w]*)/gim;
  const out: string[] = [];
  for (const m of noStrings.matchAll(re)) out.push(m[1]);
  return out;
}

interface Rule {
  label: string;
  /** tested on code without comments and without string contents */
  code?: RegExp;
  /** tested on code without comments, strings kept (for ProgIDs, command lines) */
  text?: RegExp;
}

const RULES: Rule[] = [
  { label: 'Shell', code: /(?<![\w.])(?:VBA\.|Interaction\.)?Shell\b(?!\.)(?![ \t]*(?:=|As\b))/i },
  { label: 'WScript.Shell', text: /WScript\.Shell/i },
  { label: 'Shell.Application', text: /Shell\.Application/i },
  { label: 'ShellExecute', code: /\bShellExecute[AW]?\b/i },
  { label: 'CreateObject', code: /\bCreateObject\s*\(/i },
  { label: 'GetObject', code: /\bGetObject\s*\(/i },
  { label: 'winmgmts', text: /winmgmts:/i },
  { label: 'Win32_Process', text: /Win32_Process(?:Startup)?\b/i },
  { label: 'PowerShell', text: /\bpowershell(?:\.exe)?\b/i },
  { label: 'cmd.exe', text: /\bcmd(?:\.exe)?\s+\/[ck]\b/i },
  {
    label: 'mshta/rundll32/regsvr32/certutil',
    text: /\b(?:mshta|rundll32|regsvr32|certutil|bitsadmin|wmic)(?:\.exe)?\b|\b[cw]script(?:\.exe)?\s+(?:\/\/|"|\S+\.(?:js|vbs|jse|vbe|wsf))/i,
  },
  { label: 'URLDownloadToFile', text: /\bURLDownloadToFile[AW]?\b/i },
  { label: 'XMLHTTP', text: /\b(?:Msxml2|Microsoft|MSXML2\.Server)\.?XMLHTTP\b|\bServerXMLHTTP\b|\bWinHttp\.WinHttpRequest\b/i },
  { label: 'ADODB.Stream', text: /\bADODB\.Stream\b/i },
  { label: 'SaveToFile', code: /\.SaveToFile\b/i },
  { label: 'CreateTextFile', code: /\.CreateTextFile\b/i },
  { label: '.Run', code: /\.Run\b(?!\w)/i },
  { label: '.Exec', code: /\.Exec\b(?!\w)/i },
  { label: 'Kill', code: /(?<![\w.])Kill[ \t]+["\w(]/i },
  { label: 'Environ', code: /\bEnviron\$?\s*\(/i },
  { label: 'ExpandEnvironmentStrings', code: /\bExpandEnvironmentStrings\b/i },
  { label: 'StrReverse', code: /\bStrReverse\s*\(/i },
  { label: 'CallByName', code: /\bCallByName\b/i },
  { label: 'ExecuteExcel4Macro', code: /\bExecuteExcel4Macro\b/i },
  { label: 'Declare Lib', code: /^[ \t]*(?:(?:Public|Private)[ \t]+)?Declare[ \t]+(?:PtrSafe[ \t]+)?(?:Sub|Function)\b[^\n]*\bLib\b/im },
  {
    label: 'VirtualAlloc/WriteProcessMemory/CreateThread',
    code: /\b(?:VirtualAlloc(?:Ex)?|VirtualProtect|RtlMoveMemory|WriteProcessMemory|CreateThread|CreateRemoteThread|QueueUserAPC)\b/i,
  },
  { label: 'SendKeys', code: /\bSendKeys\b/i },
  { label: 'VBProject access', code: /\b(?:VBProject|VBComponents|CodeModule|AddFromString)\b/i },
  { label: 'macro security tampering', text: /\b(?:AccessVBOM|VBAWarnings|DisableAttachementsInPV|DisableInternetFilesInPV|DisableUnsafeLocationsInPV)\b/i },
  { label: 'Application.Visible=False', code: /\bApplication\.Visible\s*=\s*False\b/i },
  { label: 'Net.WebClient', text: /\bNet\.WebClient\b|\bDownload(?:File|String)\b/i },
  { label: 'EncodedCommand', text: /\s-(?:e|ec|enc|encodedcommand)\s+[A-Za-z0-9+/=]{20,}/i },
];

const URL_RE = /\b(?:https?|ftps?):\/\/[^\s"'<>()]{3,}/gi;
const IP_RE = /\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b/g;
const EXE_RE = /\b[\w-]+\.(?:exe|dll|scr|bat|cmd|ps1|vbs|vbe|jse?|hta|jar|lnk|pif|cpl|msi|wsf)\b/gi;
const BENIGN_URL = /^(?:https?:\/\/)?(?:schemas\.openxmlformats\.org|schemas\.microsoft\.com|www\.w3\.org)/i;

function clip(s: string, max = 290): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

export function analyzeVba(modules: VbaModuleText[], part: string): Finding[] {
  const auto: string[] = [];
  const seen: string[] = [];
  const iocs: string[] = [];
  let chrCount = 0;
  let codeLen = 0;
  for (const m of modules) {
    const { noComments, noStrings } = cleanVba(m.code);
    codeLen += noStrings.length;
    for (const d of noStrings.matchAll(DECL)) {
      const name = d[1];
      const lower = name.toLowerCase();
      if (AUTOEXEC_NAMES.has(lower) || AUTO_EVENT_SUFFIX.test(name)) auto.push(name);
      else if (lower === 'main' && AUTO_MODULE_NAMES.has(m.name.toLowerCase())) auto.push(`${m.name}.Main`);
    }
    for (const r of RULES) {
      if ((r.code && r.code.test(noStrings)) || (r.text && r.text.test(noComments))) seen.push(r.label);
    }
    chrCount += (noStrings.match(/\bChr[BW]?\$?\s*\(/gi) ?? []).length;
    for (const u of noComments.match(URL_RE) ?? []) if (!BENIGN_URL.test(u)) iocs.push(u);
    for (const ip of noComments.match(IP_RE) ?? []) if (!/^(?:0|127|255)\./.test(ip) && !/^\d+\.\d+\.\d+\.0$/.test(ip)) iocs.push(ip);
    for (const lit of noComments.match(/"[^"\n]*"/g) ?? []) for (const x of lit.match(EXE_RE) ?? []) iocs.push(x);
  }
  // Chr()-built strings: many calls, or dense relative to the code size.
  if (chrCount >= 20 || (chrCount >= 8 && chrCount * 400 > codeLen)) seen.push(`Chr() obfuscation x${chrCount}`);
  const out: Finding[] = [];
  if (auto.length) {
    out.push({ symbol: OFFICE_SYMBOLS.OFFICE_MACRO_AUTOEXEC, score: 0, part, detail: clip(`auto-run: ${uniq(auto).join(', ')}`) });
  }
  const all = uniq(seen);
  const ioc = uniq(iocs);
  if (all.length || ioc.length) {
    const parts = [];
    if (all.length) parts.push(`keywords: ${all.join(', ')}`);
    if (ioc.length) parts.push(`IOCs: ${ioc.slice(0, 8).join(', ')}`);
    out.push({ symbol: OFFICE_SYMBOLS.OFFICE_MACRO_SUSPICIOUS, score: 0, part, detail: clip(parts.join('; ')) });
  }
  return out;
}

/** Lines other than blank, comment, `Attribute ...` and `Option ...`. */
export function codeLines(code: string): string[] {
  const { noComments } = cleanVba(code);
  return noComments
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Attribute\s/i.test(l) && !/^Option\s/i.test(l));
}

/** Normalised source for allow-listing: LF, no Attribute lines, no trailing blanks, no blank lines. */
export function normaliseSource(code: string): string {
  return code
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .filter((l) => l && !/^Attribute\s/i.test(l))
    .join('\n');
}
