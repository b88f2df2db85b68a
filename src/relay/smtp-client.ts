// A command-level SMTP client for the relay leg. nodemailer's client sends the whole envelope at once
// and drops unknown MAIL parameters; a transparent proxy must send each command as the client sent it
// and hand back each reply, so this client does exactly that and nothing more.
import net from 'node:net';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import tls from 'node:tls';

export interface SmtpReply {
  code: number;
  /** reply lines without the code, e.g. `['5.1.1 <x@y>: Recipient address rejected']` */
  lines: string[];
}

export function formatReply(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' / ')}`;
}

/** The connection failed, timed out, or the server broke the protocol: never a server's own answer. */
export class SmtpClientError extends Error {
  override name = 'SmtpClientError';
  constructor(
    message: string,
    readonly code: 'ECONNECTION' | 'ETIMEDOUT' | 'EPROTOCOL' | 'ETLS',
  ) {
    super(message);
  }
}

export interface SmtpClientOptions {
  host: string;
  port: number;
  connectTimeout: number;
  commandTimeout: number;
}

const MAX_REPLY_BYTES = 64 * 1024;

export class SmtpClient {
  private socket: net.Socket | tls.TLSSocket;
  private buffer = '';
  private lines: string[] = [];
  /** replies awaited, in command order (more than one when commands are pipelined) */
  private waiters: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;
  readonly extensions = new Map<string, string>();
  greeting: SmtpReply | undefined;

  private constructor(
    socket: net.Socket,
    private readonly options: SmtpClientOptions,
  ) {
    this.socket = socket;
    this.attach(socket);
  }

  static async connect(options: SmtpClientOptions): Promise<SmtpClient> {
    const socket = net.connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SmtpClientError(`connect to ${options.host}:${options.port} timed out`, 'ETIMEDOUT'));
      }, options.connectTimeout);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new SmtpClientError(`connect to ${options.host}:${options.port}: ${err.message}`, 'ECONNECTION'));
      });
    });
    const client = new SmtpClient(socket, options);
    client.greeting = await client.read(options.commandTimeout);
    return client;
  }

  /** Still connected and in step with the server. */
  get usable(): boolean {
    return !this.failure && !this.socket.destroyed && this.waiters.length === 0;
  }

  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new SmtpClientError(`downstream connection: ${err.message}`, 'ECONNECTION')));
    socket.on('close', () => this.fail(new SmtpClientError('downstream closed the connection', 'ECONNECTION')));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_REPLY_BYTES) {
      this.fail(new SmtpClientError('downstream reply too long', 'EPROTOCOL'));
      this.socket.destroy();
      return;
    }
    let eol: number;
    while ((eol = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, eol).replace(/\r$/, '');
      this.buffer = this.buffer.slice(eol + 1);
      const match = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!match) {
        this.fail(new SmtpClientError(`malformed downstream reply: ${JSON.stringify(line.slice(0, 80))}`, 'EPROTOCOL'));
        this.socket.destroy();
        return;
      }
      this.lines.push(match[3]);
      if (match[2] !== '-') {
        const reply = { code: Number(match[1]), lines: this.lines };
        this.lines = [];
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(reply);
        // a reply nobody asked for: the server is out of step with us
        else this.fail(new SmtpClientError(`unexpected downstream reply: ${formatReply(reply)}`, 'EPROTOCOL'));
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }

  private read(timeout: number): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<SmtpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new SmtpClientError(`downstream did not answer within ${timeout} ms`, 'ETIMEDOUT'));
        this.socket.destroy();
      }, timeout);
      this.waiters.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Sends one command line and returns the server's reply, whatever its code. */
  async command(line: string, timeout = this.options.commandTimeout): Promise<SmtpReply> {
    if (/[\r\n]/.test(line)) throw new SmtpClientError('command contains a line break', 'EPROTOCOL');
    if (this.failure) throw this.failure;
    const reply = this.read(timeout);
    this.socket.write(line + '\r\n', 'utf8');
    return reply;
  }

  /**
   * Sends several commands in one write (RFC 2920, when the server offers PIPELINING) and returns
   * their replies in order.
   */
  async pipeline(lines: string[]): Promise<SmtpReply[]> {
    if (lines.some((line) => /[\r\n]/.test(line))) throw new SmtpClientError('command contains a line break', 'EPROTOCOL');
    if (this.failure) throw this.failure;
    const replies = lines.map(() => this.read(this.options.commandTimeout));
    this.socket.write(lines.map((line) => line + '\r\n').join(''), 'utf8');
    const settled = await Promise.allSettled(replies);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<SmtpReply>).value);
  }

  async ehlo(name: string): Promise<SmtpReply> {
    const reply = await this.command(`EHLO ${name}`);
    this.extensions.clear();
    if (reply.code === 250) {
      for (const line of reply.lines.slice(1)) {
        const [keyword = '', ...rest] = line.trim().split(/\s+/);
        this.extensions.set(keyword.toUpperCase(), rest.join(' '));
      }
    }
    return reply;
  }

  /** STARTTLS and the TLS handshake; the caller sends EHLO again afterwards (RFC 3207). */
  async starttls(servername: string, rejectUnauthorized: boolean): Promise<SmtpReply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    const secured = tls.connect({ socket: plain, servername: net.isIP(servername) ? undefined : servername, rejectUnauthorized });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        secured.destroy();
        reject(new SmtpClientError('TLS handshake with downstream timed out', 'ETIMEDOUT'));
      }, this.options.connectTimeout);
      secured.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      secured.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(new SmtpClientError(`TLS handshake with downstream: ${err.message}`, 'ETLS'));
      });
    });
    this.socket = secured;
    this.attach(secured);
    return reply;
  }

  /**
   * Sends the message (after a 354 to DATA), dot-stuffed, then the final `.`, and returns the
   * server's reply to it. A message held in memory (chunks) goes out in one corked write; a stream
   * (a spooled file) is piped with back-pressure.
   */
  async sendMessage(message: Readable | Buffer[], finalTimeout: number): Promise<SmtpReply> {
    if (this.failure) throw this.failure;
    const socket = this.socket;
    if (Array.isArray(message)) {
      const stuffing = new DotStuffing();
      socket.cork();
      for (const chunk of message) socket.write(stuffing.stuff(chunk));
      for (const chunk of stuffing.end()) socket.write(chunk);
      socket.uncork();
      return this.read(finalTimeout);
    }
    const stuffed = message.pipe(new DotStuffer());
    message.once('error', (err) => stuffed.destroy(err));
    // corked while chunks come in, so a small message and its final dot leave in one write
    socket.cork();
    try {
      for await (const chunk of stuffed as AsyncIterable<Buffer>) {
        this.throwIfFailed(); // the socket's handlers may have failed the connection meanwhile
        if (!socket.write(chunk)) {
          socket.uncork();
          await this.drained(socket);
          socket.cork();
        }
      }
    } finally {
      socket.uncork();
    }
    return this.read(finalTimeout);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits for 'drain', or fails when the connection fails first. */
  private drained(socket: net.Socket): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.failure ?? new SmtpClientError('downstream closed the connection', 'ECONNECTION'));
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  /** Polite end: QUIT, then close whatever the answer. */
  async quit(): Promise<void> {
    try {
      await this.command('QUIT', Math.min(this.options.commandTimeout, 5000));
    } catch {
      // closing anyway
    } finally {
      this.close();
    }
  }

  /** Drops the connection at once: used to abandon a transaction without ever sending `.`. */
  close(): void {
    this.socket.destroy();
  }
}

const DOT = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');
const CRLF = Buffer.from('\r\n');
const END = Buffer.from('.\r\n');

/**
 * SMTP dot-stuffing (RFC 5321 4.5.2): a line starting with `.` gets another `.`. smtp-server removes
 * the stuffing dot after any LF, bare or not, so stuffing after any LF is its exact inverse (and keeps
 * a bare-LF `.` line from ever ending the data at a lenient downstream). Ends with CRLF `.` CRLF.
 * Chunk boundaries may fall anywhere, even between the LF and the dot.
 */
export class DotStuffing {
  private atLineStart = true;
  private tail: Buffer = Buffer.alloc(0);
  private bytes = 0;

  stuff(chunk: Buffer): Buffer {
    if (!chunk.length) return chunk;
    const parts: Buffer[] = [];
    let start = 0;
    if (this.atLineStart && chunk[0] === 0x2e) parts.push(DOT);
    let i = chunk.indexOf(LF_DOT);
    while (i !== -1) {
      parts.push(chunk.subarray(start, i + 1), DOT);
      start = i + 1;
      i = chunk.indexOf(LF_DOT, i + 1);
    }
    parts.push(chunk.subarray(start));
    this.atLineStart = chunk[chunk.length - 1] === 0x0a;
    this.tail = chunk.length >= 2 ? chunk.subarray(-2) : Buffer.concat([this.tail, chunk]).subarray(-2);
    this.bytes += chunk.length;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** What ends the data: a CRLF when the message does not end with one, then `.` CRLF. */
  end(): Buffer[] {
    return this.bytes > 0 && !this.tail.equals(CRLF) ? [CRLF, END] : [END];
  }
}

/** DotStuffing as a stream, for messages spooled to disk. */
export class DotStuffer extends Transform {
  private readonly stuffing = new DotStuffing();

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, this.stuffing.stuff(chunk));
  }

  override _flush(callback: TransformCallback): void {
    for (const chunk of this.stuffing.end()) this.push(chunk);
    callback();
  }
}
