// One message's leaves through a leaf scanner: the gateway's MIME pass (leaves to the Office
// engine's worker pool, src/inspect/attachments.ts) and the engine's own 'message' kind (an .eml
// inside a zip, leaves to the dispatcher in the same worker, src/inspect/office/message.ts) share it.
//
// Which leaves are scanned: every one whose bytes are not plainly text, and every one with a file
// name, an attachment disposition, a non-text type, or headers that disagree. Only a real text body
// (text/* without a name, its decoded bytes plainly text) takes the fast path: headers can send a
// leaf to the engine, never keep one away from it.
//
// The text parts give the body (text/html, for the reply-chain checks) and the passwords. No
// password is tried before the whole text is known: a leaf that holds something encrypted is kept,
// and scanned again at the end with the announced passwords, then the well-known ones.
import { hash } from 'node:crypto';
import type { Finding } from '../finding.js';
import { findPasswords } from '../office/passwords.js';
import { sniff, type Kind } from '../office/sniff.js';
import { OFFICE_SYMBOLS } from '../office/types.js';
import { htmlToText } from './html-text.js';
import { lenientParts } from './lenient.js';
import { MIME_SCORES, MIME_SYMBOLS } from './limits.js';
import { decodeBodyText, isPlainText, looksLikeText } from './text.js';
import { joinLeaf } from './leaf-bytes.js';
import { newWalkState, walkMessage, type Leaf, type MessageSource } from './walk.js';

/** `passwords` null: not known yet; try none (ScanContext.passwordsLater). */
export type LeafScanner = (leaf: Leaf, passwords: string[] | null) => Promise<Finding[]>;

export interface MessageScanOptions {
  scanLeaf: LeafScanner;
  /** a header block costlier than this cannot be read (MIME_UNPARSEABLE) */
  maxHeaderBytes: number;
  /** stops the walk (and is passed on by scanLeaf's owner); the pass then rejects with its reason */
  signal?: AbortSignal;
  /** the raw message once more, for the lenient second reading when the headers disagree */
  reread?: () => Promise<Buffer>;
  /**
   * Passwords from elsewhere (a separate password mail, src/quarantine/password-pairs.ts): tried on
   * the locked leaves before the message's own, which go before the well-known ones.
   */
  extraPasswords?: string[];
}

export interface MessageScan {
  findings: Finding[];
  /** the message's own text/plain parts, and its text/html parts (as mailparser joined them) */
  text?: string;
  html?: string;
  /** what each scanned leaf is, by its bytes */
  kinds: Kind[];
  /** SHA-256 of every leaf that was scanned */
  scanned: Set<string>;
  /** the password candidates the message's text gives (passwords.ts), nearest first */
  passwords: string[];
}

/** Text leaves beyond this size are not read for passwords (a password line sits near the top). */
const PASSWORD_TEXT_LIMIT = 1024 * 1024;
const TEXTUAL = /^(text\/|message\/(delivery-status|disposition-notification)$)/;

/** Whether a leaf goes to the engine: anything but a real text body (text/*, no name, decoded bytes plainly text). */
export function needsScan(leaf: Leaf, text = TEXTUAL.test(leaf.contentType) && looksLikeText(leaf.bytes)): boolean {
  if (leaf.message) return false;
  if (leaf.filename || leaf.disposition === 'attachment' || leaf.alternate || leaf.ambiguous) return true;
  return !(text && leaf.kind === 'other');
}

export async function scanMessage(source: MessageSource, options: MessageScanOptions): Promise<MessageScan> {
  const findings: Finding[] = [];
  const kinds: Kind[] = [];
  const scanned = new Set<string>();
  const texts: string[] = [];
  const htmls: string[] = [];
  const passwordText: string[] = [];
  /** leaves that hold something encrypted: scanned again once the passwords are known */
  const locked: Leaf[] = [];
  const state = newWalkState();
  const secondReading: string[] = [];

  const scan = async (leaf: Leaf): Promise<void> => {
    const digest = hash('sha256', leaf.bytes);
    if (scanned.has(digest)) return; // the same bytes read another way: scanned once
    scanned.add(digest);
    if (leaf.alternate && !isPlainText(leaf.bytes, leaf.kind)) secondReading.push(leaf.path.join(' > '));
    kinds.push(leaf.kind);
    const found = await options.scanLeaf(leaf, null);
    if (found.some(isLocked)) locked.push(leaf);
    else findings.push(...found);
  };

  for await (const item of walkMessage(source, { maxHeaderBytes: options.maxHeaderBytes, signal: options.signal }, state)) {
    if (item.problem) {
      const { symbol, path, detail } = item.problem;
      findings.push({ symbol, score: MIME_SCORES[symbol] ?? 0, ...(path.length ? { part: path.join(' > ') } : {}), detail });
      continue;
    }
    const leaf = item.leaf;
    const text = TEXTUAL.test(leaf.contentType) && looksLikeText(leaf.bytes);
    if (text && !leaf.alternate) collectText(leaf, texts, htmls, passwordText);
    if (needsScan(leaf, text)) await scan(leaf);
  }

  // the headers disagree with themselves: also read the message the lenient way, and scan what only that reading finds
  if (state.secondReading && options.reread) {
    const raw = await options.reread();
    options.signal?.throwIfAborted();
    for (const part of lenientParts(raw.toString('latin1'))) {
      options.signal?.throwIfAborted();
      if (isPlainText(part.bytes)) continue;
      const bytes = joinLeaf([part.bytes]);
      await scan({
        path: ['second reading', part.name],
        contentType: 'application/octet-stream',
        encoding: '',
        flowed: false,
        delSp: false,
        bytes,
        kind: sniff(bytes),
        body: false,
        message: false,
        alternate: true,
        ambiguous: true,
      });
    }
  }
  if (secondReading.length) {
    findings.push({
      symbol: MIME_SYMBOLS.MIME_AMBIGUOUS,
      score: MIME_SCORES[MIME_SYMBOLS.MIME_AMBIGUOUS],
      part: secondReading[0],
      detail:
        `headers that read two ways; the other reading holds content the first does not (${secondReading.length} part(s): ${secondReading.slice(0, 3).join(', ')})`.slice(
          0,
          300,
        ),
    });
  }

  // text: each HTML part was read as its lines already; a text part that shows "<b>" is not markup
  const passwords = findPasswords(passwordText.join('\n'), { text: true });
  const tried = [...new Set([...(options.extraPasswords ?? []), ...passwords])];
  for (const leaf of locked) {
    options.signal?.throwIfAborted();
    findings.push(...(await options.scanLeaf(leaf, tried)));
  }
  return { findings, kinds, scanned, passwords, ...(texts.length ? { text: texts.join('\n') } : {}), ...(htmls.length ? { html: htmls.join('<br/>\n') } : {}) };
}

/** The body text and HTML (the message's own text parts) and the text passwords are looked for in (every text leaf). */
function collectText(leaf: Leaf, texts: string[], htmls: string[], passwordText: string[]): void {
  const content = decodeBodyText(
    leaf.bytes.length > PASSWORD_TEXT_LIMIT && !leaf.body ? leaf.bytes.subarray(0, PASSWORD_TEXT_LIMIT) : leaf.bytes,
    leaf.charset,
    leaf.flowed,
    leaf.delSp,
  );
  const isHtml = leaf.contentType === 'text/html';
  if (leaf.body) (isHtml ? htmls : texts).push(content);
  // HTML as its reader sees it: a <br> or a <p> ends a line, "Pass<b>word</b>" is one word
  passwordText.push(isHtml ? htmlToText(content) : content);
}

function isLocked(f: Finding): boolean {
  return f.symbol === OFFICE_SYMBOLS.ARCHIVE_ENCRYPTED_UNSCANNABLE || f.symbol === OFFICE_SYMBOLS.OFFICE_ENCRYPTED_UNSCANNABLE;
}
