// The Sendmail milter protocol, version 6, as the milter (filter) side speaks it: framing, command
// decoding, response encoding and option negotiation. Pure: bytes in, values out, and back. The
// reference is ../shared/reference/milter-protocol.md (Postfix milter8.c and libmilter engine.c).
//
// Every packet, both directions: uint32 len (big-endian, counts the command byte) · char cmd · data.

/** Commands, MTA → milter (SMFIC_*). */
export const Cmd = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
} as const;

/** Responses, milter → MTA (SMFIR_*). */
export const Resp = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ADDRCPT_PAR: 0x32, // '2'
  SHUTDOWN: 0x34, // '4'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  CHGHEADER: 0x6d, // 'm'
  OPTNEG: 0x4f, // 'O'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
} as const;

/** Action flags (SMFIF_*): what the milter may do at end of message. */
export const Act = {
  ADDHDRS: 0x001,
  CHGBODY: 0x002,
  ADDRCPT: 0x004,
  DELRCPT: 0x008,
  CHGHDRS: 0x010,
  QUARANTINE: 0x020,
  CHGFROM: 0x040,
  ADDRCPT_PAR: 0x080,
  SETSYMLIST: 0x100,
} as const;

/** Protocol flags (SMFIP_*): events to skip, events not to wait a reply for. */
export const Proto = {
  NOCONNECT: 0x000001,
  NOHELO: 0x000002,
  NOMAIL: 0x000004,
  NORCPT: 0x000008,
  NOBODY: 0x000010,
  NOHDRS: 0x000020,
  NOEOH: 0x000040,
  NR_HDR: 0x000080,
  NOUNKNOWN: 0x000100,
  NODATA: 0x000200,
  SKIP: 0x000400,
  RCPT_REJ: 0x000800,
  NR_CONN: 0x001000,
  NR_HELO: 0x002000,
  NR_MAIL: 0x004000,
  NR_RCPT: 0x008000,
  NR_DATA: 0x010000,
  NR_UNKN: 0x020000,
  NR_EOH: 0x040000,
  NR_BODY: 0x080000,
  HDR_LEADSPC: 0x100000,
} as const;

/** Macro stages (SMFIM_*) for the macro lists of the OPTNEG reply. EOM (5) comes before EOH (6). */
export const MacroStage = { CONNECT: 0, HELO: 1, ENVFROM: 2, ENVRCPT: 3, DATA: 4, EOM: 5, EOH: 6 } as const;

export const MILTER_VERSION = 6;
/** Body chunks (and body replacements) the MTA sends are at most this long (MILTER_CHUNK_SIZE). */
export const MILTER_CHUNK_SIZE = 65535;
/** Default cap on one incoming packet: well above a body chunk, below anything that hurts. */
export const DEFAULT_MAX_PACKET = 1024 * 1024;

export class MilterProtocolError extends Error {
  override name = 'MilterProtocolError';
}

export interface Packet {
  cmd: number;
  data: Buffer;
}

/**
 * TCP reassembly: feed it whatever a read returned; it hands back every whole packet, keeping the
 * rest for the next read. A length below 1 or above the cap is a protocol error (the connection
 * ends; Postfix then applies milter_default_action).
 */
export class PacketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxPacket = DEFAULT_MAX_PACKET) {}

  /** bytes received but not yet part of a whole packet */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Packet[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const packets: Packet[] = [];
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < 1) throw new MilterProtocolError('packet length 0');
      if (len > this.maxPacket) throw new MilterProtocolError(`packet length ${len} exceeds the limit of ${this.maxPacket}`);
      if (this.buffered < 4 + len) break;
      const whole = this.take(4 + len);
      packets.push({ cmd: whole[4], data: whole.subarray(5) });
    }
    return packets;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    let first = this.chunks[0];
    if (first.length < n) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// Encoding (milter → MTA)

export function encodePacket(cmd: number, data: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out.writeUInt32BE(1 + data.length, 0);
  out[4] = cmd;
  data.copy(out, 5);
  return out;
}

const EMPTY = Buffer.alloc(0);
const NUL = Buffer.from([0]);

/** `str` fields: each NUL-terminated. */
function strings(...values: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const value of values) {
    if (value.includes('\0')) throw new MilterProtocolError('a milter string cannot contain NUL');
    parts.push(Buffer.from(value, 'utf8'), NUL);
  }
  return Buffer.concat(parts);
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

export interface Negotiated {
  version: number;
  actions: number;
  protocol: number;
  /** macro lists per stage (SMFIM_*), sent only when the MTA offered SETSYMLIST */
  macros: Map<number, string[]>;
}

export const encode = {
  continue: () => encodePacket(Resp.CONTINUE),
  accept: () => encodePacket(Resp.ACCEPT),
  reject: () => encodePacket(Resp.REJECT),
  tempfail: () => encodePacket(Resp.TEMPFAIL),
  discard: () => encodePacket(Resp.DISCARD),
  progress: () => encodePacket(Resp.PROGRESS),
  skip: () => encodePacket(Resp.SKIP),
  /** `h`: append a header; the value folded with bare LF (Postfix turns it into CRLF itself). */
  addHeader: (name: string, value: string) => encodePacket(Resp.ADDHEADER, strings(name, value)),
  /** `i`: insert a header at a position (0 = the very top). */
  insertHeader: (index: number, name: string, value: string) => encodePacket(Resp.INSHEADER, Buffer.concat([u32(index), strings(name, value)])),
  /** `q`: put the message on hold (not final: a final reply follows). */
  quarantine: (reason: string) => encodePacket(Resp.QUARANTINE, strings(reason)),
  /** `y`: our own SMTP reply, built by {@link replyText}. */
  replyCode: (text: string) => encodePacket(Resp.REPLYCODE, strings(text)),
  optneg: (n: Negotiated) => {
    const parts = [u32(n.version), u32(n.actions), u32(n.protocol)];
    for (const [stage, names] of n.macros) parts.push(u32(stage), strings(names.join(' ')));
    return encodePacket(Resp.OPTNEG, Buffer.concat(parts));
  },
};

/**
 * The REPLYCODE text: `code enhanced text`, one line per element of `lines` (`ddd-` continuation),
 * every `%` doubled (Sendmail treats the text as a format string; Postfix turns `%%` back into `%`).
 * The code must be 4xx or 5xx and the enhanced code's class must match it (Postfix checks both).
 */
export function replyText(code: number, enhanced: string, lines: string | string[]): string {
  if (!Number.isInteger(code) || code < 400 || code > 599) throw new MilterProtocolError(`reply code ${code} is not 4xx or 5xx`);
  if (!/^[45]\.\d{1,3}\.\d{1,3}$/.test(enhanced) || enhanced[0] !== String(code)[0]) {
    throw new MilterProtocolError(`enhanced status ${enhanced} does not fit reply code ${code}`);
  }
  const texts = (Array.isArray(lines) ? lines : [lines]).map((l) => l.replace(/[\r\n\0]+/g, ' ').replace(/%/g, '%%'));
  if (!texts.length) texts.push('');
  return texts.map((t, i) => `${code}${i === texts.length - 1 ? ' ' : '-'}${enhanced} ${t}`.trimEnd()).join('\r\n');
}

/** Folds a header value for `h`/`i`: lines of at most ~`width` characters, joined with LF + TAB. */
export function foldHeaderValue(name: string, value: string, width = 78): string {
  const words = value.split(' ');
  const lines: string[] = [];
  let line = '';
  let room = width - name.length - 2;
  for (const word of words) {
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
      room = width - 1;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines.join('\n\t');
}

// ---------------------------------------------------------------------------------------------------
// Decoding (MTA → milter)

export interface OptnegOffer {
  version: number;
  actions: number;
  protocol: number;
}

export function decodeOptneg(data: Buffer): OptnegOffer {
  if (data.length < 12) throw new MilterProtocolError(`OPTNEG with ${data.length} bytes of data, expected 12`);
  return { version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) };
}

/** NUL-terminated strings filling the packet (`args[][]`); a missing final NUL is an error. */
export function decodeStrings(data: Buffer, what: string): string[] {
  if (!data.length) return [];
  if (data[data.length - 1] !== 0) throw new MilterProtocolError(`${what}: data is not NUL-terminated`);
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      out.push(data.toString('utf8', start, i));
      start = i + 1;
    }
  }
  return out;
}

/** Raw (binary-safe) NUL-terminated fields: header values may carry 8-bit bytes we must not re-encode. */
export function decodeRawStrings(data: Buffer, what: string): Buffer[] {
  if (!data.length) return [];
  if (data[data.length - 1] !== 0) throw new MilterProtocolError(`${what}: data is not NUL-terminated`);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      out.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

export interface MacroPacket {
  /** the command the macros belong to ('C', 'H', 'M', ...) */
  stage: string;
  macros: Map<string, string>;
}

/** `D`: the command code, then alternating name/value strings. Names keep their braces (`{daemon_name}`). */
export function decodeMacro(data: Buffer): MacroPacket {
  if (data.length < 1) throw new MilterProtocolError('MACRO without a command code');
  const stage = String.fromCharCode(data[0]);
  const fields = decodeStrings(data.subarray(1), 'MACRO');
  const macros = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) macros.set(fields[i], fields[i + 1]);
  return { stage, macros };
}

export interface ConnectInfo {
  hostname: string;
  /** '4' inet, '6' inet6, 'L' unix, 'U' unknown */
  family: string;
  port: number;
  /** the client address ('' when unknown); Sendmail's `IPv6:` prefix removed */
  address: string;
}

export function decodeConnect(data: Buffer): ConnectInfo {
  const nul = data.indexOf(0);
  if (nul < 0 || nul + 1 >= data.length) throw new MilterProtocolError('CONNECT: truncated');
  const hostname = data.toString('utf8', 0, nul);
  const family = String.fromCharCode(data[nul + 1]);
  if (family === 'U') return { hostname, family, port: 0, address: '' };
  if (!'46L'.includes(family)) throw new MilterProtocolError(`CONNECT: unknown address family ${JSON.stringify(family)}`);
  if (data.length < nul + 4) throw new MilterProtocolError('CONNECT: truncated port');
  const port = data.readUInt16BE(nul + 2);
  const rest = data.subarray(nul + 4);
  const [address = ''] = decodeStrings(rest, 'CONNECT address');
  return { hostname, family, port, address: address.replace(/^IPv6:/i, '') };
}

/** `M` and `R`: `<address>` then ESMTP parameters, each its own string. */
export function decodeEnvelope(data: Buffer, what: string): { address: string; args: string[] } {
  const [address, ...args] = decodeStrings(data, what);
  if (address === undefined) throw new MilterProtocolError(`${what}: no address`);
  return { address, args };
}

/** `L`: name and value (raw bytes: 8-bit headers stay as received). */
export function decodeHeader(data: Buffer): { name: Buffer; value: Buffer } {
  const fields = decodeRawStrings(data, 'HEADER');
  if (fields.length !== 2) throw new MilterProtocolError(`HEADER with ${fields.length} fields, expected name and value`);
  return { name: fields[0], value: fields[1] };
}

// ---------------------------------------------------------------------------------------------------
// Negotiation

export interface Wanted {
  /** SMFIF_* we will use */
  actions: number;
  /** SMFIP_* we would like (anything the MTA did not offer is dropped) */
  protocol: number;
  macros: Map<number, string[]>;
}

/**
 * Our OPTNEG reply to the MTA's offer: min(version); our actions, which must be among those
 * offered (else the MTA would fail us anyway: a protocol error); the protocol flags we want that it
 * offered; macro lists only when it offered SETSYMLIST.
 */
export function negotiate(offer: OptnegOffer, wanted: Wanted): Negotiated {
  if (offer.version < 2) throw new MilterProtocolError(`MTA speaks milter protocol version ${offer.version}, need 2 or later`);
  const version = Math.min(MILTER_VERSION, offer.version);
  // 0 means "the version 1 defaults" (libmilter): add/change headers, body, recipients
  const offeredActions = offer.actions === 0 ? 0x0f : offer.actions;
  let actions = wanted.actions & ~Act.SETSYMLIST;
  const missing = actions & ~offeredActions;
  if (missing) throw new MilterProtocolError(`MTA does not offer the actions 0x${missing.toString(16)} we need`);
  const withMacros = wanted.macros.size > 0 && (offeredActions & Act.SETSYMLIST) !== 0 && version >= 6;
  if (withMacros) actions |= Act.SETSYMLIST;
  const protocol = wanted.protocol & offer.protocol;
  return { version, actions, protocol, macros: withMacros ? wanted.macros : new Map<number, string[]>() };
}
