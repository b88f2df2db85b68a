// The words of the recipients' digest, in English and Japanese: why a
// message was held, said as a recipient understands it (not as a symbol), and what they may do.
import type { Policy, RecipientRight } from '../policy/schema.js';

export type Language = 'en' | 'ja';

/** Symbols (a name, or a family ending in `_`), first match wins, in plain words. */
const WHY: [match: string, en: string, ja: string][] = [
  ['OFFICE_VBA_PROJECT_EMPTY', 'an Office document with an empty macro project', '空のマクロプロジェクトを含む Office 文書'],
  ['OFFICE_XLM_MACRO', 'an Excel file with old-style (Excel 4.0) macros', '旧形式（Excel 4.0）のマクロを含む Excel ファイル'],
  ['OFFICE_MACRO', 'an Office document with macros (programs that run when it is opened)', 'マクロ（開くと動くプログラム）を含む Office 文書'],
  ['OFFICE_ENCRYPTED_UNSCANNABLE', 'a password-protected document that could not be checked', 'パスワード付きで検査できなかった文書'],
  ['ARCHIVE_ENCRYPTED_UNSCANNABLE', 'a password-protected archive (zip) that could not be checked', 'パスワード付きで検査できなかった圧縮ファイル（zip など）'],
  ['ARCHIVE_LIMIT', 'an archive too large or too deeply nested to check', '大きすぎる、または入れ子が深すぎて検査できなかった圧縮ファイル'],
  ['ARCHIVE_UNSUPPORTED', 'an archive of a kind that cannot be checked', '検査できない形式の圧縮ファイル'],
  ['OFFICE_CORRUPT', 'a damaged document that could not be read', '壊れていて読めなかった文書'],
  ['TYPE_MISMATCH', 'an attachment whose content does not match its name', '名前と中身が一致しない添付ファイル'],
  ['MIME_UNPARSEABLE', 'a message whose structure could not be read to the end', '構造を最後まで読めなかったメール'],
  ['MIME_AMBIGUOUS', 'a message whose headers can be read in two ways', '二通りに読めるヘッダーを持つメール'],
  ['FILE_EXECUTABLE', 'a program (.exe and the like)', 'プログラム（.exe など）'],
  ['FILE_INSTALLER', 'an installer package', 'インストーラー'],
  ['FILE_JAVA_ARCHIVE', 'a Java program (.jar)', 'Java プログラム（.jar）'],
  ['FILE_SCRIPT', 'a script file (.js, .vbs, .bat, .ps1 ...)', 'スクリプトファイル（.js、.vbs、.bat、.ps1 など）'],
  ['FILE_HTML_APPLICATION', 'an HTML application (.hta)', 'HTML アプリケーション（.hta）'],
  ['FILE_CHM', 'a compiled help file (.chm)', 'ヘルプファイル（.chm）'],
  ['FILE_SHORTCUT', 'a shortcut file (.lnk, .url)', 'ショートカットファイル（.lnk、.url）'],
  ['FILE_DISK_IMAGE', 'a disk image (.iso, .img, .vhd)', 'ディスクイメージ（.iso、.img、.vhd）'],
  ['FILE_', 'a dangerous kind of file', '危険な種類のファイル'],
  ['ONENOTE_EMBEDDED_FILE', 'a OneNote file with another file hidden in it', '別のファイルが埋め込まれた OneNote ファイル'],
  ['HTML_SMUGGLING', 'an HTML attachment that makes your browser save a file', 'ブラウザーにファイルを保存させる HTML 添付ファイル'],
  ['SPOOF_HIJACK', 'it looks like a hijacked conversation', '乗っ取られたやり取りの続きに見えます'],
  ['SPOOF_SUSPECT', 'the sender may be impersonating someone', '送信者が他人になりすましている可能性があります'],
  [
    'SPOOF_THREAD_',
    'a reply to an earlier conversation from someone who was not part of it',
    '以前のやり取りへの返信ですが、そのやり取りにいなかった相手からです',
  ],
  ['SPOOF_DISPLAY_NAME_', "the sender's name shows an address that is not the real one", '差出人名に実際とは違うメールアドレスが書かれています'],
  ['SPOOF_KNOWN_NAME_NEW_ADDRESS', "a known correspondent's name on an unfamiliar address", '知っている相手の名前ですが、見慣れないアドレスからです'],
  ['SPOOF_REPLY_LOOKALIKE_DOMAIN', 'a sender domain that imitates a known one', '知っているドメインに似せた送信元ドメイン'],
  ['SPOOF_LOOKALIKE_DOMAIN', 'a sender domain that imitates a known one', '知っているドメインに似せた送信元ドメイン'],
  [
    'SPOOF_KNOWN_SENDER_NEW_INFRA',
    "a known correspondent's address, sent through servers it never used before",
    '知っている相手のアドレスですが、これまで使われたことのないサーバーから送られています',
  ],
  ['SPOOF_REPLY_FROM_ENVELOPE_MISMATCH', 'the visible sender differs from the address that actually sent it', '表示上の差出人と実際の送信元が違います'],
  ['SPOOF_FROM_ENVELOPE_MISMATCH', 'the visible sender differs from the address that actually sent it', '表示上の差出人と実際の送信元が違います'],
  ['SPOOF_FAKE_REPLY', 'it looks like a reply ("Re:") but is not one', '返信（Re:）に見えますが、返信ではありません'],
  ['SPOOF_CONTEXT_MACRO', 'a risky attachment next to signs of impersonation', 'なりすましの兆候と危険な添付ファイルの組み合わせ'],
  ['SPOOF_CONTEXT_PASSWORD', 'a password in the text next to signs of impersonation', 'なりすましの兆候と本文中のパスワードの組み合わせ'],
  ['SPOOF_', 'signs that the sender is impersonating someone', '送信者が他人になりすましている兆候'],
  ['AUTH_', "the sender's domain did not vouch for the message (SPF, DKIM, DMARC)", '送信元ドメインの認証（SPF、DKIM、DMARC）に失敗しました'],
  ['RATE_', 'the sending account sent unusually much mail (it may be infected)', '送信元のアカウントが異常に多くのメールを送っています（感染のおそれ）'],
  ['SENDER_SUSPENDED', 'the sending account is suspended by an administrator', '送信元のアカウントは管理者により停止されています'],
];

/** One symbol in plain words; a rule of the organisation's own is named by its symbol. */
export function explainSymbol(symbol: string, language: Language): string {
  const hit = WHY.find(([match]) => (match.endsWith('_') ? symbol.startsWith(match) : symbol === match || symbol.startsWith(`${match}_`)));
  if (hit) return language === 'ja' ? hit[2] : hit[1];
  return language === 'ja' ? `組織の規則（${symbol}）` : `a rule of your organisation (${symbol})`;
}

/** The distinct plain-word reasons for these symbols, in order. */
export function explainSymbols(symbols: string[], language: Language): string[] {
  return [...new Set(symbols.map((s) => explainSymbol(s, language)))];
}

/** The recipient's language: per domain (subdomains included, the longest entry first), else the policy's. */
export function languageFor(policy: Policy, recipient: string): Language {
  return domainLanguage(policy, recipient) ?? policy.quarantine.digest.language;
}

/** The language quarantine.digest.languages sets for the recipient's domain, if it names it. */
export function domainLanguage(policy: Policy, recipient: string): Language | undefined {
  const { languages } = policy.quarantine.digest;
  const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
  const hit = Object.keys(languages)
    .filter((d) => domain === d || domain.endsWith(`.${d}`))
    .sort((a, b) => b.length - a.length)[0];
  return hit ? languages[hit] : undefined;
}

export function formatTime(ms: number, language: Language): string {
  return new Intl.DateTimeFormat(language === 'ja' ? 'ja-JP' : 'en-GB', { dateStyle: 'medium', timeStyle: 'long' }).format(new Date(ms));
}

export const WORDS = {
  en: {
    subject: (n: number) => `Held mail: ${n} message${n === 1 ? '' : 's'} for you`,
    intro: (to: string) =>
      `These messages to ${to} were held by the mail gateway since your last digest. Open a link to see a safe preview of a message and what you can do with it.`,
    from: 'From',
    subjectLabel: 'Subject',
    received: 'Received',
    why: 'Why',
    youCan: 'You can',
    open: 'Open',
    noSubject: '(no subject)',
    right: {
      release: 'release it to yourself',
      request: 'ask an administrator to release it',
      none: 'only an administrator can release it',
    } satisfies Record<RecipientRight, string>,
    footer: (until: string) =>
      `The links work until ${until}. Opening a link changes nothing: a message is released only when you confirm on its page. ` +
      'If you do not know a message, leave it: it stays held and is removed later.',
    declined: {
      subject: '[Mailmoat] Your release request was declined',
      intro: 'An administrator declined your request to release this held message. It stays held and is removed later.',
      reason: 'Their reason',
    },
  },
  ja: {
    subject: (n: number) => `保留中のメール: ${n} 件`,
    intro: (to: string) =>
      `前回のお知らせ以降、${to} 宛の次のメールがメールゲートウェイで保留されました。リンクを開くと、メールの安全なプレビューと、できる操作が表示されます。`,
    from: '差出人',
    subjectLabel: '件名',
    received: '受信日時',
    why: '保留の理由',
    youCan: 'できること',
    open: '開く',
    noSubject: '（件名なし）',
    right: {
      release: '自分で受け取る（解放する）',
      request: '管理者に解放を依頼する',
      none: '解放できるのは管理者だけです',
    } satisfies Record<RecipientRight, string>,
    footer: (until: string) =>
      `リンクは ${until} まで有効です。リンクを開いただけでは何も変わりません。メールはページで確認したときにだけ解放されます。` +
      '心当たりのないメールはそのままにしてください。保留されたまま、後で削除されます。',
    declined: {
      subject: '[Mailmoat] 解放の依頼は却下されました',
      intro: '保留中のメールの解放の依頼は、管理者によって却下されました。メールは保留されたままで、後で削除されます。',
      reason: '理由',
    },
  },
} as const;
