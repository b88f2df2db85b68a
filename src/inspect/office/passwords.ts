// Candidate passwords for encrypted attachments, from the message's text ("Password: 2021",
// "パスワード：xxxx", the line after "Password:", quoted tokens...). Emotet sends the password of its
// encrypted zip in the body; trying these is how such a zip becomes scannable instead of opaque.

const KEYWORDS = [
  'passwords?',
  'passwort',
  'kennwort',
  'passcode',
  'pass',
  'pwd',
  'pw',
  'pin',
  'mot de passe',
  'mdp',
  'contraseña',
  'contrasena',
  'clave',
  'senha',
  "parola d'ordine",
  'parola',
  'wachtwoord',
  'hasło',
  'haslo',
  'heslo',
  'jelszó',
  'lösenord',
  'adgangskode',
  'passord',
  'salasana',
  'şifre',
  'sifre',
  'пароль',
  'パスワード',
  'ﾊﾟｽﾜｰﾄﾞ',
  '暗証番号',
  '解凍パスワード',
  '密码',
  '密碼',
  '口令',
  '비밀번호',
  '암호',
];
/** the keywords are regex sources ('passwords?') */
const KW = `(?:${KEYWORDS.join('|')})`;
/** keyword, a few words (" for the attached file", "（zip）"), a separator, the password */
const WITH_SEPARATOR = new RegExp(`(?<![\\p{L}\\p{N}])${KW}(?![\\p{L}])[^\\n:：=＝]{0,40}?\\s*[:：=＝]\\s*(.+)`, 'giu');
/** keyword + "is"/"ist"/"est"/"es"/"é"/"は": "the password is 2021", "Das Passwort ist: x" */
const WITH_VERB = new RegExp(`(?<![\\p{L}\\p{N}])${KW}(?![\\p{L}])\\s*(?:is|ist|est|es|é|è|は|为|為|는|은)(?![\\p{L}])\\s*[:：]?\\s*(.+)`, 'giu');
/** a line that is only the keyword (+ separator): the password is on the next line */
const KEYWORD_LINE = new RegExp(`^\\s*[\\p{P}\\s]*${KW}[^\\p{L}\\p{N}\\n]{0,5}\\s*$`, 'iu');
const QUOTED = /["'“”‘’「『【«]([^"'“”‘’「」『』【】«»\s]{2,64})["'“”‘’」』】»]/gu;
const STOP = new Set([
  'is',
  'ist',
  'est',
  'es',
  'the',
  'for',
  'to',
  'of',
  'and',
  'below',
  'above',
  'attached',
  'protected',
  'file',
  'zip',
  'same',
  'as',
  'usual',
  'required',
  'none',
  'n/a',
]);
const MAX = 10;

/**
 * The password part of the rest of a line: a quoted string, else the first token — without trailing
 * sentence punctuation first, then as written (passwords end in '!' or '.' too).
 */
function tokensOf(rest: string): string[] {
  const s = rest.trim();
  const q = /^["'“”‘’「『【«]([^"'“”‘’」』】»\n]{1,64})["'“”‘’」』】»]/u.exec(s);
  if (q) return q[1].trim() ? [q[1].trim()] : [];
  const raw = (s.split(/[\s\u3000]+/u)[0] ?? '').replace(/^[<([（「]+/u, '');
  const stripped = raw.replace(/[.,;:!?)\]>。、，．！？）」』】]+$/u, '');
  return [...new Set([stripped, raw])].filter((t) => t && t.length <= 64 && !STOP.has(t.toLowerCase()));
}

function htmlToText(text: string): string {
  if (!/<[a-z!/][^>]*>/i.test(text)) return text;
  return text
    .replace(/<(br|p|div|tr|li|h\d)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCodePoint(Math.min(0x10ffff, parseInt(d, 10))))
    .replace(/&amp;/gi, '&');
}

export function findPasswords(input: string): string[] {
  const text = htmlToText(input.length > 200_000 ? input.slice(0, 200_000) : input).normalize('NFKC');
  const found: string[] = [];
  const add = (...ts: string[]): void => {
    for (const t of ts) if (t && !found.includes(t) && found.length < MAX) found.push(t);
  };
  const lines = text.split(/\r?\n/);
  for (const line of lines) {
    for (const re of [WITH_SEPARATOR, WITH_VERB]) {
      re.lastIndex = 0;
      for (const m of line.matchAll(re)) add(...tokensOf(m[1]));
    }
  }
  for (let i = 0; i < lines.length - 1; i++) {
    if (!KEYWORD_LINE.test(lines[i])) continue;
    const next = lines.slice(i + 1).find((l) => l.trim() !== '');
    if (next) add(...tokensOf(next));
  }
  if (new RegExp(KW, 'iu').test(text)) for (const m of text.matchAll(QUOTED)) add(m[1]);
  return found;
}
