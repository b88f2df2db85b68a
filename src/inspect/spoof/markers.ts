// Reply markers: subject prefixes in many languages (full-width and CJK forms included, repeated,
// behind a [list] tag), and quoted thread blocks in the body — Outlook's "-----Original Message-----"
// and "From: … Sent: … To: … Subject:" headers (English, German, French, Spanish, Italian, Dutch,
// Portuguese, Polish, Nordic, Japanese 差出人/送信日時/宛先/件名, Chinese 发件人/寄件者 …), and
// "On <date>, <name> <addr> wrote:" attributions. The quoted headers give name ↔ address bindings,
// and so do the signature blocks under a quoted message ("E-mail:", "Mail:", "メール:" lines): they
// give the real address of a quoted author whose header line shows only a name.
import { nameForms } from './name-keys.js';
import { orgOf, parseMailboxes, type Mailbox } from './names.js';

const REPLY_WORDS = [
  're',
  'aw',
  'sv',
  'vs',
  'rif',
  'odp',
  'antw',
  'antwort',
  'atb',
  'ynt',
  'res',
  'r',
  'ref',
  'rv',
  'réf',
  'vá',
  'válasz',
  'odg',
  'odgovor',
  'yanıt',
  'απ',
  'σχετ',
  'отв',
  'ответ',
  'відп',
  'השב',
  'رد',
  '回复',
  '答复',
  '回覆',
  '答覆',
  '返信',
  '返事',
  '답장',
  '회신',
  'trả lời',
  'tl',
];
const FORWARD_WORDS = [
  'fw',
  'fwd',
  'wg',
  'tr',
  'enc',
  'i',
  'doorst',
  'vb',
  'vs',
  'vl',
  'rv',
  'pd',
  'prz',
  'přeposlat',
  'továbbítás',
  'fs',
  'ilt',
  'İlt',
  'προωθ',
  'пересл',
  'הועבר',
  'إعادة توجيه',
  '转发',
  '轉寄',
  '转寄',
  '転送',
  '전달',
  'chuyển tiếp',
];
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const word = (list: string[]) =>
  list
    .map(escape)
    .sort((a, b) => b.length - a.length)
    .join('|');
const PREFIX = new RegExp(
  `^\\s*(?:\\[[^\\]]{1,60}\\]\\s*)?(?:(${word(REPLY_WORDS)})|(${word(FORWARD_WORDS)}))\\s*(?:\\[\\d+\\]|\\(\\d+\\)|\\^\\d+)?\\s*:\\s*`,
  'iu',
);

export interface SubjectPrefix {
  kind: 'reply' | 'forward';
  /** how many prefixes were stacked (RE: RE: FW: → 3) */
  depth: number;
  /** the prefixes as written */
  text: string;
}

/** The reply/forward prefixes of a subject, or null. NFKC first, so "Ｒｅ：" and "RE：" count. */
export function subjectPrefix(subject: string | undefined): SubjectPrefix | null {
  if (!subject) return null;
  let rest = subject.normalize('NFKC');
  let kind: SubjectPrefix['kind'] | undefined;
  let depth = 0;
  let text = '';
  for (;;) {
    const m = PREFIX.exec(rest);
    if (!m) break;
    // "R:" and "I:" (Italian) only count in upper case, so "I: love it" or "r: ..." stay plain subjects
    if ((m[1] === 'r' || m[2] === 'i') && !/^\s*(?:\[[^\]]*\]\s*)?[RI]/.test(rest)) break;
    kind ??= m[1] ? 'reply' : 'forward';
    depth++;
    text += m[0];
    rest = rest.slice(m[0].length);
    if (depth > 20) break;
  }
  return kind ? { kind, depth, text: text.trim() } : null;
}

// Localised labels of Outlook-style quoted header blocks.
const FROM_LABELS = [
  'from',
  'von',
  'de',
  'da',
  'od',
  'från',
  'fra',
  'van',
  'lähettäjä',
  'feladó',
  'від',
  'от',
  'kimden',
  'apo',
  'από',
  '差出人',
  '送信者',
  '发件人',
  '發件人',
  '寄件者',
  '寄件人',
  '보낸 사람',
  'expéditeur',
  'remitente',
  'mittente',
];
const SENT_LABELS = [
  'sent',
  'date',
  'gesendet',
  'datum',
  'envoyé',
  "date d'envoi",
  'enviado',
  'enviada',
  'fecha',
  'inviato',
  'data',
  'wysłano',
  'wysłane',
  'skickat',
  'sendt',
  'verzonden',
  'verstuurd',
  'lähetetty',
  'elküldve',
  'отправлено',
  'дата',
  'tarih',
  'gönderildi',
  '送信日時',
  '日付',
  '日時',
  '发送时间',
  '發送時間',
  '时间',
  '日期',
  '보낸 날짜',
];
const TO_LABELS = [
  'to',
  'an',
  'à',
  'a',
  'para',
  'aan',
  'do',
  'til',
  'till',
  'vastaanottaja',
  'címzett',
  'кому',
  'kime',
  'προς',
  '宛先',
  '收件人',
  '收件者',
  '받는 사람',
];
const CC_LABELS = ['cc', 'kopie', 'copie', 'cc', 'kopia', 'kopio', 'másolat', 'копия', 'bilgi', 'κοιν', '写し', '抄送', '副本', '참조'];
const SUBJECT_LABELS = [
  'subject',
  'betreff',
  'objet',
  'asunto',
  'oggetto',
  'onderwerp',
  'assunto',
  'temat',
  'ämne',
  'emne',
  'aihe',
  'tárgy',
  'тема',
  'konu',
  'θέμα',
  '件名',
  '主题',
  '主旨',
  '제목',
];
const label = (list: string[]) => new RegExp(`^\\s*\\**\\s*(?:${word(list)})\\s*\\**\\s*[:：]\\s*(.*)$`, 'iu');
const FROM_LINE = label(FROM_LABELS);
const SENT_LINE = label(SENT_LABELS);
const TO_LINE = label(TO_LABELS);
const CC_LINE = label(CC_LABELS);
const SUBJECT_LINE = label(SUBJECT_LABELS);
const SEPARATOR =
  /^\s*-{2,}\s*(original message|ursprüngliche nachricht|originalnachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|oryginalna wiadomość|původní zpráva|originalmeddelande|opprinnelig melding|oprindelig meddelelse|alkuperäinen viesti|eredeti üzenet|исходное сообщение|元のメッセージ|原始邮件|原始郵件|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|転送メッセージ|转发邮件)\s*-{2,}\s*$/iu;
// "On Mon, 3 Jun 2024 at 10:02, Bob Smith <bob@x.example> wrote:" and its translations; Japanese
// Gmail: "2024年6月3日(月) 10:02 山田太郎 <taro@x.example>:"; Chinese: "… 写道："
const ATTRIBUTION =
  /(?:^|\s)(?:on|am|le|el|il|op|em|w dniu|den|på|kello|dne)\s.{3,120}?(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|napisał\(a\)|napisał|skrev|kirjoitti|napsal|írta)\s*[:：]\s*$|<[^<>\s]+@[^<>\s]+>\s*(?:wrote|写道|寫道|のメッセージ|さんは書きました)?\s*[:：]\s*$/iu;

export interface QuotedBlock {
  /** which marker: 'separator', 'header', 'attribution' */
  kind: 'separator' | 'header' | 'attribution';
  /** the quoted From (the person the thread says wrote it) */
  from: Mailbox[];
  /** quoted To and Cc */
  to: Mailbox[];
  /** the marker line, shortened, for the finding's detail */
  line: string;
  /** the address of the signature block under the quoted message ("E-mail: …"), '' when none */
  signature: string;
}

export interface QuotedBinding {
  /** a name key (./name-keys.ts) */
  name: string;
  /** lower-case address */
  address: string;
  /** the display name as quoted */
  display: string;
}

export interface QuotedThread {
  blocks: QuotedBlock[];
  /** every name → address binding the quoted thread states, one per name key, signature addresses included */
  bindings: QuotedBinding[];
  /** every address the quoted thread names */
  addresses: Set<string>;
}

/** Plain text of an HTML part, with line breaks where blocks end (enough to find quoted headers). */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h\d|blockquote|table)\s*>|<(p|div|tr|hr|blockquote)\b[^>]*>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;|&#160;|&#xa0;/gi, ' ')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d+);/g, (_m, n: string) => safeChar(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, n: string) => safeChar(parseInt(n, 16)))
    .replace(/&amp;/gi, '&');
}

function safeChar(code: number): string {
  try {
    return String.fromCodePoint(code);
  } catch {
    return ' ';
  }
}

/** "Bob Smith [mailto:bob@x.example]" (Outlook) → "Bob Smith <bob@x.example>" for the address parser. */
function mailboxes(value: string): Mailbox[] {
  const cleaned = value
    .replace(/\[mailto:([^\]\s]+)\]/gi, '<$1>')
    .replace(/<mailto:([^>\s]+)>/gi, '<$1>')
    .replace(/\s+(?:on behalf of|im auftrag von|de la part de|代理)\s+.*$/i, '');
  // Japanese/Chinese Outlook separates recipients with ; or 、
  return parseMailboxes(cleaned.replace(/[；、]/g, ','));
}

const MAX_LINES = 20_000;

/** Quoted header blocks and attributions of a body (text, or HTML turned into text). */
export function quotedThread(...bodies: (string | undefined)[]): QuotedThread {
  const blocks: QuotedBlock[] = [];
  for (const body of bodies) {
    if (!body) continue;
    const lines = body.split(/\r?\n/, MAX_LINES).map((l) => l.replace(/^(?:\s*>)+\s?/, '').normalize('NFKC'));
    // where each block's marker is and where its quoted message starts: the signature lies in between
    const spans: { block: QuotedBlock; at: number; start: number }[] = [];
    const push = (block: Omit<QuotedBlock, 'signature'>, at: number, start: number) => {
      const full = { ...block, signature: '' };
      blocks.push(full);
      spans.push({ block: full, at, start });
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (SEPARATOR.test(line)) {
        const header = headerBlock(lines, i + 1);
        push({ kind: 'separator', from: header?.from ?? [], to: header?.to ?? [], line: line.trim().slice(0, 80) }, i, (header?.end ?? i) + 1);
        if (header) i = header.end;
        continue;
      }
      const from = FROM_LINE.exec(line);
      if (from) {
        const header = headerBlock(lines, i);
        if (header) {
          push({ kind: 'header', from: header.from, to: header.to, line: line.trim().slice(0, 80) }, i, header.end + 1);
          i = header.end;
          continue;
        }
      }
      // attributions may wrap over two lines
      const joined = `${line} ${lines[i + 1] ?? ''}`.trim();
      for (const candidate of [line.trim(), joined]) {
        if (candidate.length > 400 || !ATTRIBUTION.test(candidate)) continue;
        const addr = /<?([^<>\s"]+@[^<>\s"]+?)>?(?=\s*(?:wrote|写道|寫道|のメッセージ|さんは書きました|[:：]))/iu.exec(candidate);
        const who = attributionPerson(candidate, addr?.[1]);
        push({ kind: 'attribution', from: who ? [who] : [], to: [], line: candidate.slice(0, 80) }, i, i + (candidate === joined ? 2 : 1));
        if (candidate === joined) i++;
        break;
      }
    }
    spans.forEach((span, k) => (span.block.signature = signatureAddress(lines, span.start, spans[k + 1]?.at ?? lines.length)));
  }
  const bindings: QuotedBinding[] = [];
  const addresses = new Set<string>();
  const bind = (display: string, address: string) => {
    const forms = nameForms(display);
    // "X via LIST" <list@…>: the address is the list's (or the relay's), not X's
    if (!forms.via) for (const name of forms.keys) bindings.push({ name, address, display });
  };
  for (const block of blocks) {
    const author = block.from.length === 1 ? block.from[0] : undefined;
    // the signature names the author's real address when the quoted header shows only a name, or
    // another address of the author's own organisation; an address elsewhere is someone else's
    if (author && block.signature) {
      if (!author.address) author.address = block.signature;
      else if (block.signature !== author.address && orgOf(block.signature) === orgOf(author.address)) bind(author.name, block.signature);
    }
    for (const m of [...block.from, ...block.to]) {
      if (m.address) addresses.add(m.address);
      if (m.address) bind(m.name, m.address);
    }
  }
  return { blocks, bindings, addresses };
}

/** "E-mail:", "Mail:", "メール:" … lines of a signature (after NFKC: full-width forms are ASCII). */
const SIGNATURE_LINE =
  /^[\s*■□●◆◇◎○・|✉]*(?:e[-\s]?mail(?:\s*address)?|mail(?:\s*address)?|メール(?:アドレス)?|eメール|電子メール)\s*[:：]\s*(?:mailto:)?<?([a-z0-9._%+'-]+@(?:[a-z0-9-]+\.)+[a-z]{2,})/iu;
/** A signature sits at the end of a quoted message: no further than this many lines after its header. */
const SIGNATURE_REACH = 200;

/** The address of the last signature line of a quoted message (lines start..end), '' when none. */
function signatureAddress(lines: string[], start: number, end: number): string {
  for (let i = Math.min(end, start + SIGNATURE_REACH) - 1; i >= start; i--) {
    const m = SIGNATURE_LINE.exec(lines[i]);
    if (m) return m[1].toLowerCase();
  }
  return '';
}

function attributionPerson(line: string, address: string | undefined): Mailbox | null {
  if (!address) return null;
  const before = line.slice(0, line.indexOf(address)).replace(/[<"]\s*$/, '');
  // the name is what stands between the date and the address: after the last comma or time
  const afterDate = /\d{1,2}:\d{2}/.test(before)
    ? before.replace(/^.*\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?\s*(?:[,，]\s*)?/i, '')
    : before.replace(/^.*\d{4}\s*(?:[,，]\s*)?/, '');
  const name = afterDate
    .replace(/^.*,\s*/, '')
    .replace(/^(on|am|le|el|il|op)\s+/i, '')
    .replace(/["']/g, '')
    .trim();
  return { name: name.length <= 80 ? name : '', address: address.toLowerCase().replace(/^mailto:/, '') };
}

/** From a From-label line: the Outlook header block (From + Sent/Date + To/Subject within 8 lines). */
function headerBlock(lines: string[], start: number): { from: Mailbox[]; to: Mailbox[]; end: number } | null {
  let from: Mailbox[] | undefined;
  let to: Mailbox[] = [];
  let sent = false;
  let other = false;
  let end = start;
  for (let i = start; i < Math.min(lines.length, start + 16); i++) {
    const line = lines[i];
    if (!line.trim()) continue; // HTML paragraphs leave blank lines between the header lines
    let m: RegExpExecArray | null;
    if (!from && (m = FROM_LINE.exec(line))) {
      from = mailboxes(m[1]);
      // a name without an address ("From: Hasegawa, Kenta", Exchange's internal form) is one author, commas and all
      if (!from.some((f) => f.address) && m[1].trim()) from = [{ name: m[1].trim(), address: '' }];
    } else if (SENT_LINE.test(line)) sent = true;
    else if ((m = TO_LINE.exec(line)) || (m = CC_LINE.exec(line))) {
      to = to.concat(mailboxes(m[1]));
      other = true;
    } else if (SUBJECT_LINE.test(line)) other = true;
    else if (from) break;
    end = i;
  }
  if (!from || !(sent || other)) return null;
  return { from, to, end };
}
