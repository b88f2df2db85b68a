// The MTA side of the milter protocol, for tests: raw packets in, replies out, nothing hidden. Plus
// the Postfix 3.7.11 conversation captured in ../shared/reference/postfix-3.7-milter-trace.txt,
// rebuilt packet by packet, so tests can replay exactly what Postfix sends.
import net from 'node:net';
import { Cmd, encodePacket, PacketReader, type Packet } from '../../src/milter/codec.js';

export const OPTNEG_POSTFIX = Buffer.from('0000000D4F00000006000001FF001FFFFF', 'hex');

/** `str` fields, each NUL-terminated. */
export function z(...fields: (string | Buffer)[]): Buffer {
  return Buffer.concat(fields.flatMap((f) => [Buffer.isBuffer(f) ? f : Buffer.from(f, 'latin1'), Buffer.from([0])]));
}

export function packet(cmd: string | number, data: Buffer = Buffer.alloc(0)): Buffer {
  return encodePacket(typeof cmd === 'string' ? cmd.charCodeAt(0) : cmd, data);
}

export function macro(stage: string, ...pairs: string[]): Buffer {
  return packet(Cmd.MACRO, Buffer.concat([Buffer.from(stage, 'latin1'), pairs.length ? z(...pairs) : Buffer.alloc(0)]));
}

export function connectPacket(hostname: string, address: string, port: number, family = '4'): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return packet(Cmd.CONNECT, Buffer.concat([z(hostname), Buffer.from(family), p, z(address)]));
}

export function optneg(version = 6, actions = 0x1ff, protocol = 0x1fffff): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(version, 0);
  b.writeUInt32BE(actions, 4);
  b.writeUInt32BE(protocol, 8);
  return packet(Cmd.OPTNEG, b);
}

export interface TraceOptions {
  /** header values with the space after the colon (SMFIP_HDR_LEADSPC negotiated); the capture had none */
  leadingSpace?: boolean;
  headers?: [string, string][];
  body?: Buffer[];
}

export const TRACE_HEADERS: [string, string][] = [
  ['From', 'alice@src.test'],
  ['To', 'bob@dst.test'],
  ['Subject', 'proxy test'],
  ['Message-Id', '<20261125201252.7AE47212050@mx.test.local>'],
  ['Date', 'Wed, 25 Nov 2026 20:12:52 +0000 (UTC)'],
];
export const TRACE_BODY = Buffer.from('line one\r\n.leading dot line\r\nlast line\r\n');
const QID = '7AE47212050';

/** The capture's connection up to (not including) OPTNEG's reply: just the OPTNEG. */
export function traceOptneg(): Buffer {
  return OPTNEG_POSTFIX;
}

/** The capture's session after OPTNEG: CONNECT … EOB, then ABORT, ABORT (no QUIT). */
export function traceSession(opts: TraceOptions = {}): Buffer[] {
  const sp = opts.leadingSpace ? ' ' : '';
  const out: Buffer[] = [
    macro('C', 'j', 'mx.test.local', '{daemon_name}', 'mx.test.local', '{daemon_addr}', '127.0.0.1', 'v', 'Postfix 3.7.11', '_', 'localhost [127.0.0.1]'),
    connectPacket('localhost', '127.0.0.1', 0xc3a7),
    macro('H'),
    packet('H', z('client.example')),
    macro('M', '{mail_addr}', 'alice@src.test', '{mail_host}', '[127.0.0.1]:10027', '{mail_mailer}', 'smtp'),
    packet('M', z('<alice@src.test>', 'SIZE=300', 'BODY=8BITMIME', 'RET=HDRS', 'ENVID=env123')),
    macro('R', '{rcpt_addr}', 'bob@dst.test', '{rcpt_host}', '[127.0.0.1]:10027', '{rcpt_mailer}', 'smtp'),
    packet('R', z('<bob@dst.test>', 'NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;bob@dst.test')),
    macro('R', 'i', QID, '{rcpt_addr}', 'carol@dst.test', '{rcpt_host}', '[127.0.0.1]:10027', '{rcpt_mailer}', 'smtp'),
    packet('R', z('<carol@dst.test>')),
    macro('T', 'i', QID),
    packet('T'),
  ];
  for (const [name, value] of opts.headers ?? TRACE_HEADERS) out.push(macro('L', 'i', QID), packet('L', z(name, sp + value)));
  out.push(macro('N', 'i', QID), packet('N'));
  for (const chunk of opts.body ?? [TRACE_BODY]) out.push(macro('B', 'i', QID, '{client_addr}', '127.0.0.1'), packet('B', chunk));
  out.push(macro('E', 'i', QID, '{client_addr}', '127.0.0.1'), packet('E'));
  return out;
}

/** The message the analyzers should see for traceSession(): headers, empty line, body. */
export function traceMessage(opts: TraceOptions = {}): Buffer {
  const headers = (opts.headers ?? TRACE_HEADERS).map(([n, v]) => `${n}: ${v.replace(/\n/g, '\r\n')}\r\n`).join('');
  return Buffer.concat([Buffer.from(headers + '\r\n', 'latin1'), ...(opts.body ?? [TRACE_BODY])]);
}

export const ABORT = packet('A');
export const QUIT = packet('Q');
export const QUIT_NC = packet('K');

/** A milter connection as the MTA sees it. */
export class MilterClient {
  private readonly reader = new PacketReader(64 * 1024 * 1024);
  private readonly packets: Packet[] = [];
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.packets.push(...this.reader.push(chunk));
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** To a port on 127.0.0.1 (from `localAddress`, a loopback address) or a UNIX socket path. */
  static connect(target: number | string, localAddress?: string): Promise<MilterClient> {
    return new Promise((resolve, reject) => {
      const socket = typeof target === 'number' ? net.connect({ host: '127.0.0.1', port: target, localAddress }) : net.connect(target);
      socket.setNoDelay(true);
      socket.once('connect', () => resolve(new MilterClient(socket)));
      socket.once('error', reject);
    });
  }

  send(...packets: Buffer[]): void {
    this.socket.write(Buffer.concat(packets));
  }

  /** Writes the bytes `size` at a time, each in its own write (one packet over many reads). */
  async trickle(bytes: Buffer, size = 1): Promise<void> {
    for (let i = 0; i < bytes.length; i += size) {
      this.socket.write(bytes.subarray(i, i + size));
      if (i % 64 === 0) await new Promise((r) => setImmediate(r));
    }
  }

  /** The next reply packet; rejects when the connection closes or nothing comes in time. */
  async read(timeout = 10000): Promise<Packet> {
    const deadline = Date.now() + timeout;
    while (!this.packets.length) {
      if (this.closed) throw new Error('milter connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no milter reply within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.packets.shift()!;
  }

  /** Replies up to and including the first final one (skipping none): e.g. [h, c] after EOB. */
  async readFinal(timeout = 10000): Promise<Packet[]> {
    const out: Packet[] = [];
    for (;;) {
      const p = await this.read(timeout);
      out.push(p);
      if ('acdrty4'.includes(String.fromCharCode(p.cmd))) return out;
    }
  }

  /** Resolves when the peer closed the connection. */
  async waitClosed(timeout = 5000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Nothing arrived (used after events negotiated as no-reply). */
  get unread(): number {
    return this.packets.length;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A reply as `c`, `y 550 5.7.1 …`, `h Name: value` for assertions. */
export function show(p: Packet): string {
  const cmd = String.fromCharCode(p.cmd);
  if (!p.data.length) return cmd;
  if (cmd === 'h') {
    const [name, value] = p.data.toString('latin1').split('\0');
    return `h ${name}:${value}`;
  }
  return `${cmd} ${p.data.toString('latin1').replace(/\0$/, '')}`;
}

/**
 * A whole message as Postfix's cleanup would send it: one HEADER per header (folded lines joined
 * with LF, the space after the colon kept with leadingSpace), EOH, BODY chunks of `chunk` bytes.
 */
export function messagePackets(raw: Buffer, opts: { leadingSpace?: boolean; chunk?: number } = {}): Buffer[] {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw.toString('latin1') : raw.subarray(0, split).toString('latin1');
  const body = split < 0 ? Buffer.alloc(0) : raw.subarray(split + 4);
  const out: Buffer[] = [];
  const fields: string[] = [];
  for (const line of head.split('\r\n')) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += '\n' + line;
    else fields.push(line);
  }
  for (const field of fields) {
    const colon = field.indexOf(':');
    const name = field.slice(0, colon);
    let value = field.slice(colon + 1);
    if (!opts.leadingSpace && value.startsWith(' ')) value = value.slice(1);
    out.push(packet('L', z(Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1'))));
  }
  out.push(packet('N'));
  const size = opts.chunk ?? 65535;
  for (let i = 0; i < body.length; i += size) out.push(packet('B', body.subarray(i, i + size)));
  return out;
}

/** CONNECT, HELO, MAIL, RCPTs, DATA as Postfix sends them (with its macros). */
export function envelopePackets(from = '<alice@internal.test>', rcpts = ['<bob@outside.test>'], helo = 'client.test'): Buffer[] {
  return [
    macro('C', 'j', 'mx.test.local', '{daemon_name}', 'mx.test.local', '{client_addr}', '127.0.0.1'),
    connectPacket('localhost', '127.0.0.1', 40000),
    macro('H'),
    packet('H', z(helo)),
    macro('M', 'i', 'QID1', '{mail_addr}', from.replace(/[<>]/g, '')),
    packet('M', z(from, 'SIZE=1000')),
    ...rcpts.flatMap((r) => [macro('R', 'i', 'QID1', '{rcpt_addr}', r.replace(/[<>]/g, '')), packet('R', z(r))]),
    packet('T'),
  ];
}
