// The words the password finder (passwords.ts) reads a message's text by: what names a password,
// what separates it from its value, what announces it on the next line, and what makes a sentence
// about a password something else (a reset link, a policy). The text is NFKC-normalised before it
// is matched, so full-width and half-width forms (ＰＷ, ﾊﾟｽﾜｰﾄﾞ) need no entries of their own.

/** Words that name a password, in scripts that separate words (matched as whole words, any case). */
const LATIN = [
  'passwords?',
  'passworte?',
  'passwörter',
  'kennw[oö]rte?',
  'passcode',
  'passphrase',
  'pswd',
  'pwd',
  'p/w',
  'pw',
  'mots? de passe',
  'mdp',
  'contraseñas?',
  'contrasenas?',
  'senhas?',
  'wachtwoord(?:en)?',
  "parola d'ordine",
  'hasło',
  'haslo',
  'heslo',
  'jelszó',
  'jelszo',
  'lösenord',
  'losenord',
  'adgangskode',
  'passord',
  'salasana',
  'şifre',
  'sifre',
  'пароль',
  'парола',
  'κωδικός',
  'kata sandi',
  'mật khẩu',
  // short or common words: only with a separator and a value that looks like a password (WEAK)
  'pass',
  'pin',
  'clave',
  'parola',
];

/** Words that name a password in scripts without spaces (matched anywhere; longer forms first). */
const CJK = ['解凍パスワード', 'パスワード', 'パス(?![\\p{Script=Katakana}ー])', '暗証番号', '密码', '密碼', '口令', '비밀번호', '비번', '암호', 'รหัสผ่าน'];

/** Keywords that are also everyday words: they count only as `KEYWORD: value-that-looks-like-a-password`. */
export const WEAK = new Set(['pass', 'pin', 'clave', 'parola', 'パス']);

/**
 * A password word, for scanning a text. Group 1 is set for a Latin one, which must also not follow a
 * letter or digit: the caller checks that (a lookbehind here costs its price at every character).
 */
export const KEYWORD = new RegExp(`(${LATIN.join('|')})(?![\\p{L}\\p{N}])|${CJK.join('|')}`, 'giu');

/**
 * KEYWORD for a text of ASCII characters only (most mail), a third faster: without the u flag, and
 * the same matches there (no CJK word and no non-ASCII letter can match; an ASCII letter folds only
 * to ASCII; a letter or digit after the word can only be [A-Za-z0-9]).
 */
export const KEYWORD_ASCII = new RegExp(`(${LATIN.join('|')})(?![A-Za-z0-9])`, 'gi');

/** A password word anywhere in a short string, with word boundaries for the Latin ones. */
export const HAS_KEYWORD = new RegExp(`(?<![\\p{L}\\p{N}])(?:${LATIN.join('|')})(?![\\p{L}\\p{N}])|${CJK.join('|')}`, 'iu');

/**
 * What stands between the keyword (and a few words: "for the attachment", "(zip)") and the value:
 * a colon or equals sign, an arrow, a dash between spaces, a verb ("is", "lautet", "est"...), or a
 * CJK topic particle (パスワードは…, 密码是…, 비밀번호는…).
 */
export const SEPARATOR = new RegExp(
  [
    '\\s*(?:[:=]|->|=>|[→⇒]|\\s[-–—]\\s)\\s*',
    '\\s(?:is|are|ist|lautet|lauten|est|es|é|è|era|será|sera|is\\s+as\\s+follows)(?![\\p{L}])\\s*:?\\s*',
    '(?:は|为|為|是|는|은|가)\\s*:?\\s*',
  ].join('|'),
  'giu',
);

/** Sentence ends inside a line: a keyword's sentence stops there. */
export const SENTENCE_END = /[.!?](?=\s|$)|[。！？]/gu;

/** "below", "as follows", 以下, 下記…: the value comes on the next line. */
export const ANNOUNCES_NEXT_LINE =
  /\b(?:below|as follows|following|underneath|unten|folgt|folgendes|nachfolgend|ci-dessous|suivant|abajo|siguiente|a continuación|abaixo|seguinte|hieronder|volgt|poniżej)\b|以下|下記|次の|下面|如下|아래|다음/iu;

/**
 * A sentence about a password that is not giving one: resetting, forgetting, expiry, policies,
 * password managers, "never share your password". Its keyword yields no candidate.
 */
export const NOT_AN_ANNOUNCEMENT = new RegExp(
  [
    'reset',
    're-set',
    'forgot',
    'forget',
    'expir',
    'polic(?:y|ies)',
    'requirements?',
    'must (?:contain|be at least|have)',
    'at least \\d+ characters',
    'manager',
    'recover',
    'remind',
    'prompt',
    'hint',
    'strength',
    "(?:never|do not|don't|not) share",
    'change your',
    'update your',
    'your new password',
    'vergessen',
    'zurücksetz',
    'zurückgesetzt',
    'abgelaufen',
    'läuft ab',
    'richtlinie',
    'oubli',
    'réinitialis',
    'olvid',
    'restablec',
    'caduc',
    'esquec',
    'redefin',
    'vergeten',
    'herstel',
    'verlopen',
    'リセット',
    '再設定',
    '再発行',
    '忘れ',
    '有効期限',
    '期限切れ',
    '変更',
    'ポリシー',
    '重置',
    '忘记',
    '忘記',
    '过期',
    '過期',
    '修改',
    '재설정',
    '분실',
    '변경',
    '만료',
  ].join('|'),
  'iu',
);

/**
 * Words that are never the password: articles, prepositions, "attached", "below", "same as usual",
 * adjectives that describe a password ("the password is strong"), greetings of a signature.
 */
export const NEVER_A_PASSWORD = new Set(
  [
    // English
    'is are was be will the a an for to of and or in on at by with from this that it its your my our you we',
    'below above attached attachment attachments protected file files zip document same as usual before previous',
    'required none n/a na null empty blank here there following follows separately separate sent send sending later',
    'soon shortly mail email e-mail message not no yes set correct wrong incorrect invalid valid strong weak short long',
    'case-sensitive sensitive different identical unchanged changed included enclosed provided needed optional',
    'mandatory used about also still now then only please thanks thank regards best hi hello dear sincerely cheers',
    'unknown secret confidential coming follow next see check use find refer click open',
    // German, French, Spanish, Portuguese, Dutch, Italian
    'ist der die das den dem des für unten oben folgt folgendes wie immer gleich separat getrennt anbei beigefügt und',
    'oder nicht bitte danke est le la les de du des pour ci-dessous ci-dessus suit même habituel séparément joint et ou',
    'pas es el los las del para abajo arriba mismo siguiente adjunto por y é o os as do da mesmo seguinte anexo het een',
    'voor hieronder hierboven zelfde bijlage apart è il per sotto',
  ]
    .join(' ')
    .split(' '),
);
