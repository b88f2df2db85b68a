// What a display name says about the person: a set of keys, one per written form. Business mail
// writes one person as "長谷川 健太", "長谷川健太様", "中川 健太 課長", "Kenta Hasegawa", "HASEGAWA Kenta",
// "木村 拓也 / Takuya Kimura", "村上 綾 via bukai" or "'山田 太郎'". Titles and honorifics (Japanese and
// English) are dropped, bilingual forms split into one key per script, "X via Y" and "X (by way of Y)"
// reduced to X, family/given order made irrelevant (Latin tokens sorted). Kanji and romaji are not
// transliterated: there is no maintained JavaScript library that reads a Japanese name's kanji
// reliably (readings are per person), so the two forms are related only through an address they
// share, in the quoted thread or in the thread memory.

/** English, European and romanised Japanese titles and honorifics (whole tokens). */
const TITLES = new Set(
  [
    'mr mrs ms miss mx dr prof sir madam herr frau hr fr m mme mlle sr sra srta dott dottssa ing dipl mag jr phd md esq',
    'san sama kun chan sensei dono',
    // job titles a signature-style display name carries: "Bob Smith, CEO", "Smith Bob (Sales Manager)"
    'ceo cfo cto coo cio ciso vp svp evp president chairman director manager',
  ].flatMap((l) => l.split(' ')),
);

/** Japanese (and Chinese, Korean) titles and honorifics: dropped as tokens, and from the end of a name written without spaces. */
const CJK_TITLES = [
  '代表取締役社長',
  '代表取締役',
  '取締役',
  '副社長',
  '社長',
  '会長',
  '専務',
  '常務',
  '理事長',
  '理事',
  '監査役',
  '顧問',
  '参与',
  '本部長',
  '事業部長',
  '支店長',
  '工場長',
  '部長代理',
  '課長代理',
  '課長補佐',
  '部長',
  '次長',
  '課長',
  '係長',
  '室長',
  '所長',
  '店長',
  'グループ長',
  'チームリーダー',
  'リーダー',
  'マネージャー',
  'マネジャー',
  'ディレクター',
  '主任',
  '主査',
  '主幹',
  '担当者',
  '担当',
  '御中',
  '先生',
  '女史',
  '様',
  'さま',
  'さん',
  '殿',
  'どの',
  '氏',
  '君',
  'くん',
  'ちゃん',
  '女士',
  '老师',
  '님',
  '씨',
].sort((a, b) => b.length - a.length);
const CJK_TITLE_SUFFIX = new RegExp(`(?:${CJK_TITLES.join('|')})$`, 'u');
/** Organisation words in a Japanese display name: a company ("株式会社トリヒキ") or a department ("営業部"), never a person. */
const CJK_ORGANISATION =
  /株式会社|有限会社|合同会社|\(株\)|㈱|商事|商会|工業|産業|製作所|銀行|証券|保険|ホールディングス|事務所|協会|組合|大学|病院|事務局|窓口|センター|サポート|カスタマー|お客様|運営|管理者|通知|配信|(?:営業|総務|経理|人事|開発|技術|購買|資材|企画|管理|業務|製造|品質保証|品質管理|情報システム|広報|法務|財務|調達|生産|設計|販売|物流|システム|営業推進|海外)(?:本部|事業部|部|課|室|係|グループ|チーム)$/u;
/** Names that say nothing about a person: a role or a product. */
const GENERIC = new Set([
  'customer service',
  'no reply',
  'mailer daemon',
  'undisclosed recipients',
  'customer support',
  'sales team',
  'support team',
  'help desk',
  'the team',
]);
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}々〆ヶー]/u;
const QUOTES = /["'`‘’“”«»「」『』]/g;
/** Bracketed parts: "(Takuya Kimura)", "[Sales]", "【営業部】" (full-width brackets are ASCII after NFKC). */
const BRACKETED = /[([{<【〔〈《]([^)\]}>】〕〉》]*)[)\]}>】〕〉》]?/g;

export interface NameForms {
  /** one key per written form of the person (a bilingual name gives two); only names that say who someone is */
  keys: string[];
  /** the Y of "X via Y" / "X (by way of Y)" (a list or service that sent for X); '' when none */
  via: string;
}

/** Lower case, full-width folded (NFKC), Latin diacritics dropped (Japanese voiced marks kept: が is not か). */
function fold(text: string): string {
  return text
    .normalize('NFKC')
    .normalize('NFD')
    .replace(/(\p{Script=Latin})\p{M}+/gu, '$1')
    .normalize('NFC')
    .toLowerCase();
}

interface Run {
  cjk: boolean;
  text: string;
  bracketed: boolean;
}

/** The runs of one script in a part of the name: "木村 拓也 Takuya Kimura" is a CJK run and a Latin run. */
function scriptRuns(part: string, bracketed: boolean): Run[] {
  const runs: Run[] = [];
  for (const token of part.split(/\s+/).filter(Boolean)) {
    const cjk = CJK_CHAR.test(token);
    const last = runs.at(-1);
    if (last && last.cjk === cjk) last.text += ` ${token}`;
    else runs.push({ cjk, text: token, bracketed });
  }
  return runs;
}

function cjkKey(text: string): string {
  const tokens = text
    .split(/[^\p{L}\p{N}々〆ヶー]+/u)
    .filter(Boolean)
    .filter((t) => !CJK_TITLES.includes(t) && !CJK_ORGANISATION.test(t));
  // titles written onto the name ("長谷川健太様", "山田部長様"), as often as they are stacked
  let compact = tokens.join('');
  for (let previous = ''; previous !== compact;) {
    previous = compact;
    compact = compact.replace(CJK_TITLE_SUFFIX, '');
  }
  if (!compact || CJK_ORGANISATION.test(compact)) return '';
  // a surname alone ("山田", what "山田部長" leaves) is shared by too many people to say who someone is
  const personal = compact.length >= 3 || (tokens.length >= 2 && compact.length >= 2);
  return personal ? compact : '';
}

function latinKey(text: string): string {
  let s = text;
  const comma = s.split(',');
  // "Smith, Bob" → "Bob Smith"; "Bob Smith, CEO" keeps its order (the title goes below)
  if (comma.length === 2 && comma[0].trim() && comma[1].trim()) s = `${comma[1]} ${comma[0]}`;
  let tokens = s
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .filter((t) => !TITLES.has(t));
  // middle initials ("Bob J. Smith") say nothing once two real tokens are there
  if (tokens.filter((t) => t.length > 1).length >= 2) tokens = tokens.filter((t) => t.length > 1);
  if (tokens.length < 2 || GENERIC.has(tokens.join(' '))) return '';
  return tokens.sort().join(' ');
}

/** The keys of a display name, and the list or service it was sent through ("X via Y"). */
export function nameForms(display: string): NameForms {
  let s = fold(display).replace(/(?:mailto:)?[^\s<>()[\]]+@[^\s<>()[\]]+/g, ' '); // an address written into the name is judged separately
  let via = '';
  const byWayOf = /\(\s*by way of\s+([^)]*)\)?/.exec(s);
  if (byWayOf) {
    via = byWayOf[1].trim();
    s = s.replace(byWayOf[0], ' ');
  }
  const viaList = /^(.*?\S)\s+via\s+(\S.*)$/.exec(s);
  if (viaList) {
    s = viaList[1];
    via ||= viaList[2].trim();
  }
  s = s.replace(QUOTES, ' ');
  const parts: Run[] = [];
  const outside = s.replace(BRACKETED, (_m, inner: string) => {
    parts.push(...scriptRuns(inner, true));
    return ' / ';
  });
  for (const piece of outside.split(/[/|]/)) parts.push(...scriptRuns(piece, false));
  const main = parts.filter((p) => !p.bracketed);
  // a bracketed part is the other-language form of the name ("木村 拓也 (Takuya Kimura)"), or a department ("(Sales)")
  const kept = parts.filter((p) => !p.bracketed || !main.length || main.every((m) => m.cjk !== p.cjk));
  const keys = kept.map((p) => (p.cjk ? cjkKey(p.text) : latinKey(p.text))).filter(Boolean);
  return { keys: [...new Set(keys)], via };
}

/** The keys of a display name (see nameForms). */
export function nameKeys(display: string): string[] {
  return nameForms(display).keys;
}

/** Do two sets of name keys share a key? */
export function sameName(a: readonly string[], b: readonly string[]): boolean {
  return a.some((k) => b.includes(k));
}
