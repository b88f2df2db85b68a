// BIFF5/BIFF8 (`Book`/`Workbook` stream) reader for Excel 4.0 macro sheets: BOUNDSHEET sheet
// types and visibility, built-in NAMEs (Auto_Open/Auto_Close), FORMULA records in macro-sheet
// substreams decoded to formula text (enough ptgs to name the functions: EXEC, CALL, REGISTER...).

export interface BiffSheet {
  name: string;
  /** 0 visible, 1 hidden, 2 very hidden */
  hidden: number;
  /** BOUNDSHEET dt: 0 worksheet/dialog, 1 macro sheet, 2 chart, 6 VB module */
  type: number;
  bofPos: number;
  formulas: string[];
}

export interface BiffInfo {
  /** 8 for BIFF8, 5 for BIFF5/7 */
  version: number;
  sheets: BiffSheet[];
  /** defined names (built-ins resolved: Auto_Open, Auto_Close, ...) */
  names: string[];
  /** offset of the FILEPASS record (stream encrypted/obfuscated past it) */
  filepassPos?: number;
  filepass?: Buffer;
  /** formulas found in substreams whose BOF says macro sheet but which no BOUNDSHEET points at */
  strayMacroFormulas: string[];
}

const BUILTIN_NAMES = [
  'Consolidate_Area',
  'Auto_Open',
  'Auto_Close',
  'Extract',
  'Database',
  'Criteria',
  'Print_Area',
  'Print_Titles',
  'Recorder',
  'Data_Form',
  'Auto_Activate',
  'Auto_Deactivate',
  'Sheet_Title',
  '_FilterDatabase',
];

// [MS-XLS] 2.5.198.17 Ftab / 2.5.198.18 Cetab: only the names we report or render; others print as FN#id.
const FTAB: Record<number, string> = {
  0x00: 'COUNT',
  0x01: 'IF',
  0x04: 'SUM',
  0x1d: 'INDEX',
  0x1f: 'MID',
  0x20: 'LEN',
  0x35: 'GOTO',
  0x36: 'HALT',
  0x37: 'RETURN',
  0x3f: 'RAND',
  0x4a: 'NOW',
  0x4f: 'ABSREF',
  0x54: 'ERROR',
  0x55: 'STEP',
  0x57: 'ECHO',
  0x58: 'SET.NAME',
  0x59: 'CALLER',
  0x5e: 'ACTIVE.CELL',
  0x5f: 'SELECTION',
  0x6a: 'GET.FORMULA',
  0x6b: 'GET.NAME',
  0x6c: 'SET.VALUE',
  0x6e: 'EXEC',
  0x6f: 'CHAR',
  0x70: 'LOWER',
  0x71: 'UPPER',
  0x73: 'LEFT',
  0x74: 'RIGHT',
  0x77: 'REPLACE',
  0x78: 'SUBSTITUTE',
  0x79: 'CODE',
  0x7b: 'DIRECTORY',
  0x7c: 'FIND',
  0x84: 'FOPEN',
  0x85: 'FCLOSE',
  0x86: 'FSIZE',
  0x87: 'FREADLN',
  0x88: 'FREAD',
  0x89: 'FWRITELN',
  0x8a: 'FWRITE',
  0x94: 'INDIRECT',
  0x95: 'REGISTER',
  0x96: 'CALL',
  0xa6: 'FILES',
  0xab: 'FOR',
  0xac: 'WHILE',
  0xad: 'BREAK',
  0xae: 'NEXT',
  0xb2: 'EXECUTE',
  0xb9: 'GET.CELL',
  0xba: 'GET.WORKSPACE',
  0xbb: 'GET.WINDOW',
  0xbc: 'GET.DOCUMENT',
  0xc9: 'UNREGISTER',
  0xdf: 'ELSE',
  0xe0: 'ELSE.IF',
  0xe1: 'END.IF',
  0xe2: 'FOR.CELL',
  0xec: 'CREATE.OBJECT',
  0xf4: 'INFO',
  0x101: 'EVALUATE',
  0x10b: 'REGISTER.ID',
  0x10c: 'GET.WORKBOOK',
  0x150: 'CONCATENATE',
};
/** fixed argument counts of ptgFunc functions above (ptgFuncVar carries its own) */
const FTAB_ARGS: Record<number, number> = {
  0x1f: 3,
  0x20: 1,
  0x35: 1,
  0x3f: 0,
  0x4a: 0,
  0x55: 0,
  0x59: 0,
  0x5e: 0,
  0x5f: 0,
  0x6a: 1,
  0x6c: 2,
  0x6f: 1,
  0x70: 1,
  0x71: 1,
  0x77: 4,
  0x79: 1,
  0x85: 1,
  0x86: 1,
  0x87: 1,
  0x88: 2,
  0x89: 2,
  0x8a: 2,
  0xac: 1,
  0xad: 0,
  0xae: 0,
  0xb2: 2,
  0xba: 1,
  0xc9: 1,
  0xdf: 0,
  0xe0: 1,
  0xe1: 0,
  0xf4: 1,
};
const CETAB: Record<number, string> = {
  0x01: 'OPEN',
  0x04: 'SAVE',
  0x05: 'SAVE.AS',
  0x06: 'FILE.DELETE',
  0x08: 'PRINT',
  0x0a: 'QUIT',
  0x10: 'CLOSE',
  0x11: 'RUN',
  0x3d: 'DEFINE.NAME',
  0x5d: 'HIDE',
  0x5e: 'UNHIDE',
  0x5f: 'WORKSPACE',
  0x60: 'FORMULA',
  0x61: 'FORMULA.FILL',
  0x62: 'FORMULA.ARRAY',
  0x67: 'ACTIVATE',
  0x6d: 'SELECT',
  0x6e: 'DELETE.NAME',
  0x76: 'ALERT',
  0x77: 'NEW',
  0x7a: 'MESSAGE',
  0x7d: 'APP.ACTIVATE',
  0x83: 'SEND.KEYS',
  0x94: 'ON.TIME',
  0x95: 'WAIT',
  0xad: 'APP.MAXIMIZE',
  0x17f: 'WORKBOOK.HIDE',
};
const BINOPS: Record<number, string> = {
  0x03: '+',
  0x04: '-',
  0x05: '*',
  0x06: '/',
  0x07: '^',
  0x08: '&',
  0x09: '<',
  0x0a: '<=',
  0x0b: '=',
  0x0c: '>=',
  0x0d: '>',
  0x0e: '<>',
  0x0f: ' ',
  0x10: ',',
  0x11: ':',
};

function colName(c: number): string {
  let s = '';
  c &= 0x3fff;
  c += 1;
  while (c > 0) {
    const m = (c - 1) % 26;
    s = String.fromCharCode(65 + m) + s;
    c = Math.floor((c - 1) / 26);
  }
  return s;
}

/** Renders a parsed expression (rgce) to formula text. Unknown tokens end the rendering with '…'. */
export function renderFormula(rgce: Buffer, biff8: boolean, names: string[]): string {
  const st: string[] = [];
  const pop = () => st.pop() ?? '';
  const popN = (n: number) => {
    const a: string[] = [];
    for (let i = 0; i < n; i++) a.unshift(pop());
    return a;
  };
  let p = 0;
  const refLen = biff8 ? 4 : 3;
  const areaLen = biff8 ? 8 : 6;
  let truncated = false;
  while (p < rgce.length) {
    const t = rgce[p++];
    const base = t >= 0x20 ? (t & 0x1f) | 0x20 : t;
    if (BINOPS[t] !== undefined) {
      const [a, b] = popN(2);
      st.push(`${a}${BINOPS[t]}${b}`);
      continue;
    }
    switch (base) {
      case 0x01:
      case 0x02:
        p += biff8 ? 4 : 4;
        st.push('SHARED');
        break;
      case 0x12:
        st.push(`+${pop()}`);
        break;
      case 0x13:
        st.push(`-${pop()}`);
        break;
      case 0x14:
        st.push(`${pop()}%`);
        break;
      case 0x15:
        st.push(`(${pop()})`);
        break;
      case 0x16:
        st.push('');
        break;
      case 0x17: {
        const cch = rgce[p] ?? 0;
        if (biff8) {
          const wide = (rgce[p + 1] ?? 0) & 1;
          const len = wide ? cch * 2 : cch;
          const s = rgce.subarray(p + 2, p + 2 + len);
          st.push(`"${wide ? s.toString('utf16le') : s.toString('latin1')}"`);
          p += 2 + len;
        } else {
          st.push(`"${rgce.subarray(p + 1, p + 1 + cch).toString('latin1')}"`);
          p += 1 + cch;
        }
        break;
      }
      case 0x19: {
        const grbit = rgce[p] ?? 0;
        const w = p + 3 <= rgce.length ? rgce.readUInt16LE(p + 1) : 0;
        p += 3;
        if (grbit & 0x04) p += (w + 1) * 2;
        if (grbit & 0x10) st.push(`SUM(${pop()})`);
        break;
      }
      case 0x1c:
        p += 1;
        st.push('#ERR');
        break;
      case 0x1d:
        st.push(rgce[p] ? 'TRUE' : 'FALSE');
        p += 1;
        break;
      case 0x1e:
        st.push(p + 2 <= rgce.length ? String(rgce.readUInt16LE(p)) : '0');
        p += 2;
        break;
      case 0x1f:
        st.push(p + 8 <= rgce.length ? String(rgce.readDoubleLE(p)) : '0');
        p += 8;
        break;
      case 0x20:
        p += biff8 ? 7 : 7;
        st.push('{array}');
        break;
      case 0x21: {
        if (p + 2 > rgce.length) {
          truncated = true;
          break;
        }
        const id = rgce.readUInt16LE(p);
        p += 2;
        const args = popN(FTAB_ARGS[id] ?? 1);
        st.push(`${FTAB[id] ?? `FN#${id}`}(${args.join(',')})`);
        break;
      }
      case 0x22: {
        if (p + 3 > rgce.length) {
          truncated = true;
          break;
        }
        const argc = rgce[p] & 0x7f;
        const tab = rgce.readUInt16LE(p + 1);
        p += 3;
        const id = tab & 0x7fff;
        const args = popN(argc);
        if (!(tab & 0x8000) && id === 0xff) {
          const fn = (args.shift() ?? 'UDF').replace(/^"|"$/g, '');
          st.push(`${fn}(${args.join(',')})`);
        } else {
          const name = tab & 0x8000 ? (CETAB[id] ?? `CE#${id}`) : (FTAB[id] ?? `FN#${id}`);
          st.push(`${name}(${args.join(',')})`);
        }
        break;
      }
      case 0x23: {
        const idx = p + 2 <= rgce.length ? rgce.readUInt16LE(p) : 0;
        p += biff8 ? 4 : 14;
        st.push(names[idx - 1] ?? `NAME#${idx}`);
        break;
      }
      case 0x24:
      case 0x2a:
      case 0x2c: {
        if (p + refLen > rgce.length) {
          truncated = true;
          break;
        }
        const row = rgce.readUInt16LE(p);
        const col = biff8 ? rgce.readUInt16LE(p + 2) : rgce[p + 2];
        p += refLen;
        st.push(base === 0x2a ? '#REF!' : `${colName(col)}${(row & (biff8 ? 0xffff : 0x3fff)) + 1}`);
        break;
      }
      case 0x25:
      case 0x2b:
      case 0x2d:
        p += areaLen;
        st.push('AREA');
        break;
      case 0x26:
      case 0x27:
      case 0x28:
        p += 6;
        break;
      case 0x29:
      case 0x2e:
      case 0x2f:
        p += biff8 ? 2 : 2;
        break;
      case 0x39: {
        const idx = biff8 && p + 6 <= rgce.length ? rgce.readUInt16LE(p + 2) : 0;
        p += biff8 ? 6 : 24;
        st.push(names[idx - 1] ?? `NAMEX#${idx}`);
        break;
      }
      case 0x3a:
      case 0x3c:
        p += biff8 ? 6 : 17;
        st.push('REF3D');
        break;
      case 0x3b:
      case 0x3d:
        p += biff8 ? 10 : 20;
        st.push('AREA3D');
        break;
      default:
        truncated = true;
    }
    if (truncated) break;
  }
  const body = st.join(' ');
  return `=${body}${truncated ? '…' : ''}`;
}

function readShortString(d: Buffer, off: number, biff8: boolean): string {
  const cch = d[off] ?? 0;
  if (!biff8) return d.subarray(off + 1, off + 1 + cch).toString('latin1');
  const wide = (d[off + 1] ?? 0) & 1;
  const s = d.subarray(off + 2, off + 2 + (wide ? cch * 2 : cch));
  return wide ? s.toString('utf16le') : s.toString('latin1');
}

function readName(d: Buffer, biff8: boolean): string {
  if (d.length < 15) return '';
  const grbit = d.readUInt16LE(0);
  const cch = d[3];
  let off = 14;
  let wide = 0;
  if (biff8) {
    wide = d[14] & 1;
    off = 15;
  }
  const raw = d.subarray(off, off + (wide ? cch * 2 : cch));
  const text = wide ? raw.toString('utf16le') : raw.toString('latin1');
  if (grbit & 0x0020) {
    const idx = text.charCodeAt(0);
    return BUILTIN_NAMES[idx] ?? `Builtin#${idx}`;
  }
  return text;
}

/**
 * Walks the records. `decrypted` marks a stream already decrypted (FILEPASS then does not stop
 * the walk).
 */
export function parseBiff(stream: Buffer, decrypted = false, maxFormulas = 100_000): BiffInfo {
  const info: BiffInfo = { version: 8, sheets: [], names: [], strayMacroFormulas: [] };
  let pos = 0;
  let first = true;
  let current: BiffSheet | undefined;
  let currentIsMacro = false;
  let inGlobals = true;
  let nFormulas = 0;
  while (pos + 4 <= stream.length) {
    const id = stream.readUInt16LE(pos);
    const len = stream.readUInt16LE(pos + 2);
    const start = pos;
    const data = stream.subarray(pos + 4, Math.min(pos + 4 + len, stream.length));
    pos += 4 + len;
    if (id === 0x0809 || id === 0x0209 || id === 0x0409) {
      const vers = data.length >= 2 ? data.readUInt16LE(0) : 0;
      const dt = data.length >= 4 ? data.readUInt16LE(2) : 0;
      if (first) {
        info.version = vers === 0x0500 ? 5 : 8;
        first = false;
      }
      inGlobals = dt === 0x0005;
      current = info.sheets.find((s) => s.bofPos === start);
      currentIsMacro = dt === 0x0040 || current?.type === 1;
      continue;
    }
    const biff8 = info.version === 8;
    if (id === 0x002f && inGlobals && !decrypted) {
      info.filepassPos = start;
      info.filepass = Buffer.from(data);
      break; // everything after is encrypted/obfuscated; the caller may decrypt and call again
    }
    if (id === 0x0085 && data.length >= 7) {
      info.sheets.push({ bofPos: data.readUInt32LE(0), hidden: data[4] & 3, type: data[5], name: readShortString(data, 6, biff8), formulas: [] });
    } else if (id === 0x0018) {
      info.names.push(readName(data, biff8));
    } else if (id === 0x0006 && currentIsMacro && data.length >= 22 && nFormulas < maxFormulas) {
      const cce = data.readUInt16LE(20);
      const text = renderFormula(data.subarray(22, 22 + cce), biff8, info.names);
      nFormulas++;
      if (current) current.formulas.push(text);
      else info.strayMacroFormulas.push(text);
    }
  }
  return info;
}
