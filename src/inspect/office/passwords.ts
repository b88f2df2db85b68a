// Candidate passwords for encrypted attachments, from the message's text. Emotet sends the password
// of its encrypted zip in the body (and Japanese business mail in a second message, "PPAP"); trying
// these is how such a zip becomes scannable instead of opaque.
//
// Every sentence or label with a password word (password-words.ts, many languages) is read:
// - the value after it on the same line: `Password: 2021`, `The password for the attachment is 2021`,
//   `添付ファイルのパスワード: 7531`, `パスワードは「Ab12」です`, a table cell `PW | 7531`;
// - the next non-empty lines when the line announces them (`解凍パスワードは以下の通りです。`, `Password:`)
//   or gives no value (`Here is the password for the zip`: then only a lone password-like token);
// - quoted tokens (「」『』【】"" “” '' ‘’ «») near a password word.
// Full-width characters are normalised (NFKC: ＰＷ：７５３１ is PW:7531), invisible characters
// removed, HTML read as text. A sentence about resets, expiry or policies gives nothing.
//
// Candidates are ranked by their distance to the keyword and capped (MAX_PASSWORDS): each costs a
// key derivation from the message's budget (office.maxPasswordAttempts), so the likely ones go first
// and a text stuffed with decoys cannot make the gateway try hundreds.
import { htmlToText, looksLikeHtml } from '../mime/html-text.js';
import {
  ANNOUNCES_NEXT_LINE,
  HAS_KEYWORD,
  KEYWORD,
  KEYWORD_ASCII,
  NEVER_A_PASSWORD,
  NOT_AN_ANNOUNCEMENT,
  SENTENCE_END,
  SEPARATOR,
  WEAK,
} from './password-words.js';

/** How many candidates a text yields at most (the nearest ones). */
export const MAX_PASSWORDS = 8;

export interface PasswordCandidate {
  password: string;
  /** characters from the keyword to the value, a line counting LINE: the ranking */
  distance: number;
  /** where it was found */
  via: 'value' | 'label' | 'next-line' | 'quoted';
}

/** Only this much of a message's text is read (a password sits near the top). */
const MAX_TEXT = 200_000;
/** Keyword occurrences read per text: a text of nothing but "password" costs no more than this. */
const MAX_KEYWORDS = 200;
/** Words allowed between the keyword and its separator: "for the attached invoice (zip)". */
const MAX_GAP = 40;
/** How far around a keyword its sentence is looked for. */
const SENTENCE_WINDOW = 300;
/** The distance of one line. */
const LINE = 100;
/** A value without a separator (`PW 7531`) ranks after one with. */
const LABEL_PENALTY = 20;
const NEXT_LINES = 2;
/** How far "the next lines" look past empty and decorative lines. */
const NEXT_LINE_SPAN = 10;
/** A line longer than this is prose, not a password on its own line. */
const MAX_VALUE_LINE = 200;
/** Quoted tokens count within this many lines of a password word. */
const QUOTE_LINES = 3;

/** How sure the context is that the next token is a password. */
type Strength =
  /** after a colon, equals sign, arrow or particle, or announced on the line before */
  | 'value'
  /** after "is"/"ist"/"est": a word alone must end the sentence ("the password is tiger.") */
  | 'verb'
  /** no separator, or a weak keyword: only what looks like a password (digits, symbols, MixedCase) */
  | 'weak'
  | 'quoted';

const ASCII = /^[\x00-\x7f]*$/;
const INVISIBLE = /[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/gu;
/** Scripts without spaces: a password (ASCII in practice) ends where they begin (パスワードは1234です). */
const CJK_TAIL = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}ー].*$/su;
const QUOTE_PAIRS: [string, string][] = [
  ['"', '"'],
  ['“', '”'],
  ['„', '“'],
  ['«', '»'],
  ['「', '」'],
  ['『', '』'],
  ['【', '】'],
  ['‘', '’'],
  ["'", "'"],
];
const LEADING_OPENERS = new RegExp(`^[<(\\[{${QUOTE_PAIRS.map(([open]) => escape(open)).join('')}]+`, 'u');
const QUOTED = new RegExp(
  QUOTE_PAIRS.map(([open, close]) => {
    const o = escape(open);
    const c = escape(close);
    // an apostrophe is a quote only at a word's edge: "don't" and "Bob's" are not quotes
    return open === "'" ? `(?<![\\p{L}\\p{N}])'([^'\\n]{1,64}?)'(?![\\p{L}\\p{N}])` : `${o}([^${c}\\n]{1,64}?)${c}`;
  }).join('|'),
  'gu',
);
const TRAILING_CLOSERS = new RegExp(`[${QUOTE_PAIRS.map(([, close]) => escape(close)).join('')}]+$`, 'u');
const QUOTED_AT_START = new RegExp(`^(?:${QUOTED.source})`, 'u');
const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
/** `TEL:03-…`, `Fax:…`: a labelled value of another kind */
const LABELLED = /^\p{L}+:/u;
const PHONE = /^\+?\(?\d{1,4}\)?[-. ]\d{2,4}[-. ]\d{3,4}$/;
const ARCHIVE_NAME = /\.(?:zip|7z|rar|lzh|docx?|docm|xlsx?|xlsm|pptx?|pdf|txt)$/i;

/** The text as the finder reads it: HTML as lines, invisible characters out, NFKC, LF line ends. */
export function normaliseText(input: string, html = looksLikeHtml(input)): string {
  const text = html ? htmlToText(input) : input;
  // plain ASCII (most mail) has no invisible characters and is its own NFKC form
  const normal = ASCII.test(text) ? text : text.replace(INVISIBLE, '').normalize('NFKC');
  return normal.replace(/\r\n?/g, '\n');
}

/**
 * The candidates of a text, nearest first (not capped). `text`: the input is text already (the MIME
 * pass converts each HTML part itself), never read as HTML.
 */
export function findPasswordCandidates(input: string, options: { text?: boolean } = {}): PasswordCandidate[] {
  const head = input.length > MAX_TEXT ? input.slice(0, MAX_TEXT) : input;
  const text = normaliseText(head, options.text ? false : looksLikeHtml(head));
  const lines = text.split('\n');
  const found = new Map<string, PasswordCandidate>();
  const add = (password: string, distance: number, via: PasswordCandidate['via']) => {
    const known = found.get(password);
    if (!known || distance < known.distance) found.set(password, { password, distance, via });
  };
  /** where the password words that announce something are: quoted tokens in their sentence and the lines after count */
  const anchors: { line: number; col: number; from: number }[] = [];
  // one pass of the keyword expression over the whole text (not line by line: a text of short lines costs no more)
  let line = 0;
  let lineStart = 0;
  let keywords = 0;
  for (const m of text.matchAll(ASCII.test(text) ? KEYWORD_ASCII : KEYWORD)) {
    if (m[1] !== undefined && m.index > 0 && LETTER_OR_DIGIT.test(text[m.index - 1])) continue; // inside a word: "compass"
    if (++keywords > MAX_KEYWORDS) break;
    while (line + 1 < lines.length && lineStart + lines[line].length < m.index) lineStart += lines[line++].length + 1;
    const current = lines[line];
    const start = m.index - lineStart;
    const end = start + m[0].length;
    const weak = WEAK.has(m[0].toLowerCase());
    const sentence = sentenceAround(current, start, end);
    if (NOT_AN_ANNOUNCEMENT.test(current.slice(sentence.start, end))) continue;
    const read = readValue(current.slice(end, sentence.end), weak);
    if (read === 'not-an-announcement') continue;
    if (!weak) anchors.push({ line, col: end, from: sentence.start });
    for (const c of read.values) add(c.password, c.offset + (read.label ? LABEL_PENALTY : 0), read.label ? 'label' : 'value');
    if (read.next) {
      const announced = read.next === 'announced';
      for (const c of nextLines(lines, line, announced && !weak ? 'value' : 'weak', announced ? NEXT_LINES : 1)) add(c.password, c.offset, 'next-line');
    }
  }
  for (const anchor of anchors) {
    for (let j = anchor.line; j <= Math.min(lines.length - 1, anchor.line + QUOTE_LINES); j++) {
      // the keyword's sentence and what follows it, a window of the line: a huge line is not read again per keyword
      const from = j === anchor.line ? anchor.from : 0;
      const window = lines[j].slice(from, (j === anchor.line ? anchor.col : 0) + SENTENCE_WINDOW);
      for (const q of window.matchAll(QUOTED)) {
        const inner = q
          .slice(1)
          .find((g) => g !== undefined)!
          .trim();
        // a quote near the keyword, not right after it: one token ("cvs update" is a command, not a password)
        if (!/\s/.test(inner) && acceptable(inner, 'quoted', true)) add(inner, LINE * (j - anchor.line) + Math.abs(from + q.index - anchor.col), 'quoted');
      }
    }
  }
  return [...found.values()].sort((a, b) => a.distance - b.distance);
}

/** The likeliest passwords of a text, nearest to their keyword first, at most MAX_PASSWORDS. */
export function findPasswords(input: string, options: { text?: boolean } = {}): string[] {
  return findPasswordCandidates(input, options)
    .slice(0, MAX_PASSWORDS)
    .map((c) => c.password);
}

interface ValueRead {
  /** candidates on the keyword's line, `offset` characters after it */
  values: { password: string; offset: number }[];
  /** no separator: `PW 7531` */
  label: boolean;
  /** look on the next lines: the line announces it (`は以下の通りです`, `Password:`) or just gave none */
  next?: 'announced' | 'maybe';
}

/** What follows a keyword in its sentence. */
function readValue(rest: string, weak: boolean): ValueRead | 'not-an-announcement' {
  let announced = false;
  for (const sep of rest.matchAll(SEPARATOR)) {
    const gap = rest.slice(0, sep.index);
    // a weak keyword is a label only when its separator follows at once ("Pass: 1234", not "pass in a pointer >= X")
    if (gap.length > (weak ? 2 : MAX_GAP) || gap.includes('\t')) break;
    if (NOT_AN_ANNOUNCEMENT.test(gap)) return 'not-an-announcement';
    const verb = /^\s+\p{Script=Latin}/u.test(sep[0]);
    const at = sep.index + sep[0].length;
    const value = rest.slice(at);
    const values = tokensOf(value, weak ? 'weak' : verb ? 'verb' : 'value');
    if (values.length) return { values: values.map((v) => ({ ...v, offset: at + v.offset })), label: false };
    if (!/[\p{L}\p{N}]/u.test(value) || ANNOUNCES_NEXT_LINE.test(value) || ANNOUNCES_NEXT_LINE.test(gap)) announced = true;
  }
  if (NOT_AN_ANNOUNCEMENT.test(rest)) return 'not-an-announcement';
  if (announced || !/[\p{L}\p{N}]/u.test(rest) || ANNOUNCES_NEXT_LINE.test(rest)) return { values: [], label: false, next: 'announced' };
  // a weak keyword ("pass", "pin") with no separator is an everyday word, not an announcement
  if (weak) return { values: [], label: false };
  // a label and its value, separated by a space or a table cell: only what looks like a password
  const label = /^[\s|]+/.exec(rest);
  const values = label ? tokensOf(rest.slice(label[0].length), 'weak').map((v) => ({ ...v, offset: label[0].length + v.offset })) : [];
  return values.length ? { values, label: true } : { values: [], label: false, next: 'maybe' };
}

/**
 * Candidates on the lines after line `i`: the first that is not empty or decoration, then (when the
 * line announced them) one more that looks like a password.
 */
function nextLines(lines: string[], i: number, strength: Strength, count: number): { password: string; offset: number }[] {
  const out: { password: string; offset: number }[] = [];
  let seen = 0;
  for (let j = i + 1; j < lines.length && j <= i + NEXT_LINE_SPAN && seen < count; j++) {
    const line = lines[j].trim();
    if (!/[\p{L}\p{N}]/u.test(line)) continue;
    seen++;
    if (line.length > MAX_VALUE_LINE) continue; // prose, not a password line
    if (HAS_KEYWORD.test(line)) break; // a line with its own password word speaks for itself
    const words = line.split(/\s+/).length;
    const s: Strength = seen === 1 ? strength : 'weak';
    // a password stands alone on its line (or with a remark: `Kx7#p2 (case-sensitive)`), prose does not
    if (s === 'weak' ? words > 1 : words > 3) continue;
    for (const c of tokensOf(line, s)) out.push({ password: c.password, offset: LINE * (j - i) + c.offset });
  }
  return out;
}

/** The value at the start of `value`: a quoted string, else its first token, as written and without sentence punctuation. */
function tokensOf(value: string, strength: Strength): { password: string; offset: number }[] {
  const lead = value.length - value.trimStart().length;
  const s = value.slice(lead);
  const quoted = QUOTED_AT_START.exec(s);
  if (quoted) {
    const inner = quoted
      .slice(1)
      .find((g) => g !== undefined)!
      .trim();
    return acceptable(inner, 'quoted', true) ? [{ password: inner, offset: lead + 1 }] : [];
  }
  const raw = (s.split(/\s/)[0] ?? '').replace(CJK_TAIL, '');
  const after = s.slice(raw.length).trimStart();
  const ends = !after || /^[\p{P}\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u.test(after) || /[.,;!?]$/.test(raw);
  const forms = variants(raw.replace(LEADING_OPENERS, ''));
  // the form without any trailing punctuation decides: "strong." is no more a password than "strong"
  if (!forms.length || !acceptable(forms[0].replace(/[.,;:!?。、]+$/u, ''), strength, ends)) return [];
  return forms.filter((t) => t.length >= 2 && t.length <= 64).map((password, n) => ({ password, offset: lead + n * 0.5 }));
}

/**
 * The token without sentence punctuation first ("is 4711." → 4711), then as written; a trailing
 * ! or ? is more often the password's own ("Welcome1!"), so that form goes first there.
 */
function variants(token: string): string[] {
  let t = token.replace(/[([{<]+$/u, '');
  // a closing bracket without its opening one belongs to the sentence: "(password: 1234)"
  for (const [open, close] of [
    ['(', ')'],
    ['[', ']'],
    ['{', '}'],
    ['<', '>'],
  ]) {
    while (t.endsWith(close) && !t.includes(open)) t = t.slice(0, -1);
  }
  t = t.replace(TRAILING_CLOSERS, '');
  const bare = t.replace(/[.,;:。、]+$/u, '');
  if (/[!?]$/.test(bare)) return unique([bare, bare.replace(/[!?]+$/, ''), t]);
  return unique([bare, t]);
}

function acceptable(t: string, strength: Strength, ends: boolean): boolean {
  if (t.length < 2 || t.length > 64) return false;
  if (strength === 'quoted' ? t.split(/\s+/).length > 3 : /\s/.test(t)) return false;
  if (NEVER_A_PASSWORD.has(t.toLowerCase())) return false;
  if (/^[a-z][a-z0-9+.-]*:\/\/|^www\.|^mailto:/i.test(t) || /^[^@\s]+@[^@\s]+\.[a-z]{2,}$/i.test(t)) return false;
  if (ARCHIVE_NAME.test(t)) return false; // 「見積書.zip」のパスワード: the file, not its password
  if (/^[\p{P}\p{S}]+$/u.test(t) || /^(?:x+|\*+|•+|●+)$/iu.test(t)) return false; // decoration, or a masked password
  if (HAS_KEYWORD.test(t)) return false; // a label (【パスワード】), not its value
  if (strength === 'weak') return t.length >= 3 && passwordLike(t) && !LABELLED.test(t) && !PHONE.test(t);
  if (strength === 'verb') return passwordLike(t) || ends;
  return true;
}

/** Digits, symbols or an inner capital: not an everyday word. */
function passwordLike(t: string): boolean {
  return /\p{N}/u.test(t) || /[^\p{L}\p{N}]/u.test(t) || (/\p{Ll}/u.test(t) && /\p{Lu}/u.test(t.slice(1)));
}

/** The sentence around a keyword, within SENTENCE_WINDOW characters; its end includes the full stop. */
function sentenceAround(line: string, start: number, end: number): { start: number; end: number } {
  const from = Math.max(0, start - SENTENCE_WINDOW);
  let s = from;
  for (const m of line.slice(from, start).matchAll(SENTENCE_END)) s = from + m.index + m[0].length;
  const tail = line.slice(end, end + SENTENCE_WINDOW);
  const stop = new RegExp(SENTENCE_END.source, 'gu').exec(tail);
  return { start: s, end: stop ? end + stop.index + stop[0].length : end + tail.length };
}

function unique(items: string[]): string[] {
  return [...new Set(items.filter(Boolean))];
}

function escape(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
