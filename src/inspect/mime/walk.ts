// The MIME walk: every leaf of a message, decoded, one at a time. Built on @zone-eu/mailsplit, the
// splitter mailparser itself runs on (maintained, streaming, bounded, and written to split the way
// Python's email package and postal-mime split, i.e. as the clients that render mail do), with
// libbase64/libqp streaming decoders and our uuencode decoder for the bodies.
//
// What the walk adds to the splitter:
// - each leaf's decoded bytes whatever its Content-Type or disposition (a text/plain part with a
//   name, a base64 text/html part, the single-part body itself);
// - uuencoded `begin` … `end` blocks inside text leaves, and x-uuencode parts, as leaves of their own;
// - forwarded messages opened as messages: message/rfc822 (base64 too) and any leaf whose bytes
//   sniff as a message (headers first, MIME-Version anywhere or nowhere), walked by this same walk;
// - two readings where the headers disagree with themselves (two Content-Type or
//   Content-Transfer-Encoding fields, two boundaries): the leaf under each decoding, and a flag that
//   asks the caller for the lenient second reading of the whole message (lenient.ts);
// - problems the caller must hold the message for: header blocks past the limit, too many parts,
//   absurd nesting.
//
// Leaves come out one at a time and the walk waits until the caller asks for the next one, so one
// message holds at most one decoded leaf (plus what the caller keeps), decoded as it streams in
// (leaf-bytes.ts). An AbortSignal stops it.
import type { Readable, Transform } from 'node:stream';
import { once } from 'node:events';
import mailsplit from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import libbase64 from 'libbase64';
import libqp from 'libqp';
import { sniff, type Kind } from '../office/sniff.js';
import { decodeUuBody, findUuBlocks } from './uuencode.js';
import { MIME_LIMITS, MIME_SYMBOLS } from './limits.js';
import { joinLeaf, LeafBytes } from './leaf-bytes.js';

type Node = MimeNode;

export interface Leaf {
  /** where it sits: ['invoice.eml', 'part 2'] (each forwarded message and uuencoded block adds an element) */
  path: string[];
  filename?: string;
  /** declared type, lower case ('text/plain' when none was declared) */
  contentType: string;
  disposition?: string;
  /** declared Content-Transfer-Encoding, lower case, '' when none */
  encoding: string;
  charset?: string;
  flowed: boolean;
  delSp: boolean;
  /** the decoded content, on an ArrayBuffer of its own (leaf-bytes.ts): a scan worker gets a copy of exactly this */
  bytes: Buffer;
  /** what the bytes are (the Office engine's sniff) */
  kind: Kind;
  /** the top-level message's own text (mailparser's rule: text/plain or text/html, inline or no disposition) */
  body: boolean;
  /** will be walked as a message right after this (its leaves follow): not a document to scan */
  message: boolean;
  /** decoded another way than its headers said (a second reading): never taken for plain text on its headers */
  alternate: boolean;
  /** the headers of this part disagree with themselves */
  ambiguous: boolean;
}

export interface Problem {
  symbol: string;
  path: string[];
  detail: string;
}

export type WalkItem = { leaf: Leaf; problem?: undefined } | { problem: Problem; leaf?: undefined };

export interface WalkOptions {
  /** a header block costlier than this cannot be read (mailsplit counts each line as at least 64 bytes) */
  maxHeaderBytes: number;
  signal?: AbortSignal;
}

export interface WalkState {
  /** the headers disagree somewhere: the caller should read the message a second, lenient way */
  secondReading: boolean;
  /** leaves so far, across nested messages */
  leaves: number;
}

const MESSAGE_TYPES = new Set(['message/rfc822', 'message/global', 'message/news']);
const TEXT_BODY_TYPES = new Set(['text/plain', 'text/html', 'message/delivery-status']);
const UUENCODE = new Set(['x-uuencode', 'uuencode', 'x-uue', 'uue']);
const KNOWN_ENCODINGS = new Set(['', '7bit', '8bit', 'binary', 'base64', 'quoted-printable', ...UUENCODE]);

export type MessageSource = Readable | Buffer | Buffer[];

function isBytes(source: MessageSource): source is Buffer | Buffer[] {
  return Buffer.isBuffer(source) || Array.isArray(source);
}

/** Walks a message: a stream of its raw bytes, or the bytes (one buffer, or the chunks a spool holds). */
export async function* walkMessage(source: MessageSource, options: WalkOptions, state: WalkState = newWalkState()): AsyncGenerator<WalkItem> {
  yield* walkAt(source, [], 0, options, state);
}

export function newWalkState(): WalkState {
  return { secondReading: false, leaves: 0 };
}

interface Open {
  node: Node;
  path: string[];
  body: BodyCollector;
  ambiguity: Ambiguity | null;
}

async function* walkAt(source: MessageSource, base: string[], messageDepth: number, options: WalkOptions, state: WalkState): AsyncGenerator<WalkItem> {
  const splitter = new mailsplit.Splitter({ ignoreEmbedded: true, maxHeadSize: options.maxHeaderBytes, maxChildNodes: MIME_LIMITS.maxParts });
  // bytes already in memory go in at once (no stream hop); a stream is piped, with back-pressure
  const input = isBytes(source) ? null : source;
  if (input) {
    input.once('error', (err) => splitter.destroy(err));
    input.pipe(splitter);
  } else {
    for (const chunk of Buffer.isBuffer(source) ? [source] : (source as Buffer[])) splitter.write(chunk);
    splitter.end();
  }
  const numbers = new Map<Node, { id: number[]; children: number; depth: number }>();
  const childless = new Set<Node>();
  let open: Open | null = null;
  let tooDeep = false;
  try {
    for await (const chunk of splitter as AsyncIterable<SplitterChunk>) {
      options.signal?.throwIfAborted();
      if (chunk.type === 'node') {
        if (open) yield* finishLeaf(open, base, messageDepth, options, state);
        open = null;
        const node = chunk;
        const parent = node.parentNode ? numbers.get(node.parentNode) : undefined;
        if (node.parentNode) childless.delete(node.parentNode);
        const id = parent ? [...parent.id, ++parent.children] : [];
        const depth = parent ? parent.depth + 1 : 0;
        numbers.set(node, { id, children: 0, depth });
        if (depth > MIME_LIMITS.maxNesting && !tooDeep) {
          tooDeep = true;
          yield problem(MIME_SYMBOLS.MIME_UNPARSEABLE, base, `MIME parts nested deeper than ${MIME_LIMITS.maxNesting} levels`);
        }
        const ambiguity = ambiguityOf(node);
        if (ambiguity) state.secondReading = true;
        if (node.multipart) {
          childless.add(node);
          continue;
        }
        if (++state.leaves > MIME_LIMITS.maxParts) throw Object.assign(new Error(`more than ${MIME_LIMITS.maxParts} parts`), { code: 'EMAXLEN' });
        open = { node, path: [...base, label(node, id)], body: new BodyCollector(node.encoding || '', ambiguity !== null), ambiguity };
      } else if (chunk.type === 'body' && open && chunk.node === open.node) {
        open.body.write(chunk.value);
      }
    }
    if (open) yield* finishLeaf(open, base, messageDepth, options, state);
    open = null;
    // a multipart without a single part: its boundary matches nothing, so a client reads it some other way
    if (childless.size) state.secondReading = true;
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    yield problem(MIME_SYMBOLS.MIME_UNPARSEABLE, base, unreadable(err));
  } finally {
    input?.unpipe(splitter);
    splitter.destroy();
    input?.destroy();
  }
}

function unreadable(err: unknown): string {
  const e = err as Error & { code?: string };
  if (e.code === 'EMAXLEN') {
    if (/header/i.test(e.message)) return 'a header block larger than the limit: the structure after it was not read';
    return `${e.message}: the rest of the message was not read`;
  }
  return `MIME structure unreadable: ${e.message}`.slice(0, 200);
}

function problem(symbol: string, path: string[], detail: string): WalkItem {
  return { problem: { symbol, path, detail } };
}

/** A leaf's name in findings: its file name, else its part number ('part 1.2'), else 'body'. */
function label(node: Node, id: number[]): string {
  if (node.filename) return node.filename.replace(/[\r\n]+/g, ' ').slice(0, 200);
  return id.length ? `part ${id.join('.')}` : 'body';
}

async function* finishLeaf(open: Open, base: string[], messageDepth: number, options: WalkOptions, state: WalkState): AsyncGenerator<WalkItem> {
  const { node, path, ambiguity } = open;
  const { decoded, raw } = await open.body.end();
  const contentType = node.contentType || 'text/plain';
  const disposition = node.disposition || undefined;
  const encoding = node.encoding || '';
  const leaf: Leaf = {
    path,
    filename: node.filename || undefined,
    contentType,
    disposition,
    encoding,
    charset: node.charset || undefined,
    flowed: node.flowed,
    delSp: node.delSp,
    bytes: decoded,
    kind: 'other',
    body: base.length === 0 && TEXT_BODY_TYPES.has(contentType) && (!disposition || disposition === 'inline'),
    message: false,
    alternate: false,
    ambiguous: ambiguity !== null,
  };

  if (UUENCODE.has(encoding)) {
    // the part is its uuencoded blocks: each one a leaf named after its `begin` line
    for (const [i, block] of decodeUuBody(raw ?? decoded).entries()) {
      yield* offerLeaf(
        { ...leaf, bytes: joinLeaf([block.bytes]), path: i === 0 && !block.name ? path : [...path, block.name || `uuencoded#${i + 1}`] },
        base,
        messageDepth,
        options,
        state,
      );
    }
    return;
  }
  yield* offerLeaf(leaf, base, messageDepth, options, state);

  // the other reading of a part whose headers disagree, or whose encoding no decoder knows
  for (const other of alternateDecodings(encoding, ambiguity, raw ?? decoded)) {
    yield* offerLeaf({ ...leaf, bytes: other.bytes, alternate: true, body: false, path: [...path, other.label] }, base, messageDepth, options, state);
  }

  // uuencoded blocks inside text: Outlook and Thunderbird show them as attachments
  if (/^text\//.test(contentType) || !leaf.filename) {
    let n = 0;
    for (const block of findUuBlocks(decoded)) {
      n++;
      yield* offerLeaf(
        { ...leaf, bytes: joinLeaf([block.bytes]), filename: block.name, body: false, path: [...path, block.name || `uuencoded#${n}`] },
        base,
        messageDepth,
        options,
        state,
      );
    }
  }
}

/** Yields the leaf, then, when it is a message (declared, or by its bytes), the leaves inside it. */
async function* offerLeaf(leaf: Leaf, base: string[], messageDepth: number, options: WalkOptions, state: WalkState): AsyncGenerator<WalkItem> {
  const kind = (leaf.kind = sniff(leaf.bytes));
  const declaredMessage = MESSAGE_TYPES.has(leaf.contentType) && (kind === 'other' || kind === 'message' || kind === 'mht');
  if (!declaredMessage && kind !== 'message') {
    yield { leaf };
    return;
  }
  leaf.message = true;
  yield { leaf };
  if (messageDepth + 1 > MIME_LIMITS.maxMessageDepth) {
    yield problem(MIME_SYMBOLS.MIME_UNPARSEABLE, leaf.path, `messages forwarded inside messages deeper than ${MIME_LIMITS.maxMessageDepth} levels`);
    return;
  }
  yield* walkAt(leaf.bytes, leaf.path, messageDepth + 1, options, state);
}

// ---- two readings ---------------------------------------------------------------------------

interface Ambiguity {
  /** every distinct Content-Transfer-Encoding the part declares */
  encodings: string[];
  detail: string;
}

/** Whether a part's headers can be read two ways: two differing Content-Type, Content-Transfer-Encoding or boundary values. */
function ambiguityOf(node: Node): Ambiguity | null {
  const headers = node.headers;
  if (!headers) return null;
  const values = (key: string) => [
    ...new Set(
      headers.get(key).map((line) =>
        line
          .slice(line.indexOf(':') + 1)
          .replace(/\s+/g, ' ')
          .trim()
          .toLowerCase(),
      ),
    ),
  ];
  const types = values('content-type');
  const encodings = values('content-transfer-encoding').map((e) => e.replace(/\(.*\)/g, '').trim());
  const boundaries = new Set(types.flatMap((t) => [...t.matchAll(/boundary\s*\*?\s*=\s*"?([^";]*)/g)].map((m) => m[1].trim())));
  const reasons: string[] = [];
  if (types.length > 1) reasons.push(`${types.length} Content-Type fields`);
  if (new Set(encodings).size > 1) reasons.push(`${encodings.length} Content-Transfer-Encoding fields`);
  if (boundaries.size > 1) reasons.push(`${boundaries.size} boundaries`);
  if (!reasons.length) return null;
  return { encodings: [...new Set(encodings)], detail: reasons.join(', ') };
}

/** The content decoded the ways its headers did not pick: the other declared encodings, base64 for an unknown one. */
function alternateDecodings(encoding: string, ambiguity: Ambiguity | null, raw: Buffer): { label: string; bytes: Buffer }[] {
  const others = new Set<string>();
  for (const e of ambiguity?.encodings ?? []) if (e !== encoding) others.add(e);
  // an encoding no decoder knows ('base-64', '"base64"', 'b64'): a lenient client may still see base64
  if (!KNOWN_ENCODINGS.has(encoding) && looksBase64(raw)) others.add('base64');
  const out: { label: string; bytes: Buffer }[] = [];
  for (const e of others) {
    const norm = /b(ase)?-?64/.test(e) ? 'base64' : /quoted/.test(e) ? 'quoted-printable' : UUENCODE.has(e) ? 'x-uuencode' : 'raw';
    if (norm === 'raw') {
      if (KNOWN_ENCODINGS.has(encoding) && encoding !== '' && encoding !== '7bit' && encoding !== '8bit' && encoding !== 'binary')
        out.push({ label: 'as raw', bytes: raw });
    } else if (norm === 'base64') out.push({ label: 'as base64', bytes: joinLeaf([libbase64.decode(raw.toString('latin1'))]) });
    else if (norm === 'quoted-printable') out.push({ label: 'as quoted-printable', bytes: joinLeaf([libqp.decode(raw)]) });
    else for (const block of decodeUuBody(raw)) out.push({ label: `as uuencode${block.name ? ` ${block.name}` : ''}`, bytes: joinLeaf([block.bytes]) });
  }
  return out;
}

function looksBase64(raw: Buffer): boolean {
  const head = raw.toString('latin1', 0, Math.min(raw.length, 4096));
  return head.length >= 16 && /^[A-Za-z0-9+/=\s]+$/.test(head);
}

// ---- bodies ---------------------------------------------------------------------------------

/** Collects one leaf's body, decoding it on the way (streaming where the decoder streams) straight into the leaf's bytes. */
class BodyCollector {
  private readonly decoder: Transform | null;
  private readonly decoded = new LeafBytes();
  /** the raw body, kept only where a second decoding needs it (headers that disagree); without a decoder it is the leaf */
  private readonly raw: LeafBytes | null;

  constructor(encoding: string, keepRaw: boolean) {
    this.decoder = encoding === 'base64' ? new libbase64.Decoder() : encoding === 'quoted-printable' ? new libqp.Decoder() : null;
    this.raw = keepRaw && this.decoder !== null ? new LeafBytes() : null;
    this.decoder?.on('data', (chunk: Buffer) => this.decoded.append(chunk));
  }

  write(chunk: Buffer): void {
    this.raw?.append(chunk);
    if (this.decoder) this.decoder.write(chunk);
    else this.decoded.append(chunk);
  }

  async end(): Promise<{ decoded: Buffer; raw: Buffer | null }> {
    if (!this.decoder) {
      const bytes = this.decoded.finish();
      return { decoded: bytes, raw: bytes };
    }
    const ended = once(this.decoder, 'end');
    this.decoder.end();
    await ended;
    return { decoded: this.decoded.finish(), raw: this.raw && this.raw.finish() };
  }
}
