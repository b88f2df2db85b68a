// A raw SMTP connection from a chosen loopback address (127.0.0.1, 127.0.0.2, ...): bytes written as
// the test says, at the pace it says (a slowloris drips one byte at a time), replies collected as
// `code text`. For connection limits, where what matters is who connects and how slowly.
import net from 'node:net';

export class RawClient {
  readonly replies: string[] = [];
  closed = false;
  /** when the connection closed (Date.now()) */
  closedAt = 0;
  private buffer = '';
  private pending: string[] = [];
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.parse(d));
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** Connects from `from` (a loopback address) and waits for the first reply (220 or 421). */
  static async connect(port: number, from = '127.0.0.1', timeout = 5000): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    await client.reply(timeout);
    return client;
  }

  get greeting(): string {
    return this.replies[0] ?? '';
  }

  get last(): string {
    return this.replies.at(-1) ?? '';
  }

  write(text: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  /** The reply after the `count` already seen; resolves '' if the connection closes first. */
  async reply(timeout = 10000, count = this.replies.length): Promise<string> {
    const deadline = Date.now() + timeout;
    while (this.replies.length <= count) {
      if (this.closed) return '';
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeout} ms; so far ${JSON.stringify(this.replies)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.replies[count];
  }

  /** Writes a command line and returns its reply. */
  async command(line: string, timeout = 10000): Promise<string> {
    const count = this.replies.length;
    this.write(line + '\r\n');
    return this.reply(timeout, count);
  }

  /** Writes `text` one byte every `everyMs` until it is all sent or the connection closes. */
  async drip(text: string | Buffer, everyMs: number): Promise<void> {
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length && !this.closed; i++) {
      this.write(bytes.subarray(i, i + 1));
      await this.sleepUnlessClosed(everyMs);
    }
  }

  /** Resolves when the server closed the connection; throws if it is still open after `timeout`. */
  async waitClosed(timeout = 10000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`connection still open after ${timeout} ms; replies ${JSON.stringify(this.replies)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private async sleepUnlessClosed(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.closed && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(50, until - Date.now())));
  }

  private parse(d: Buffer): void {
    this.buffer += d.toString('latin1');
    let eol: number;
    while ((eol = this.buffer.indexOf('\r\n')) !== -1) {
      const line = this.buffer.slice(0, eol);
      this.buffer = this.buffer.slice(eol + 2);
      this.pending.push(line.slice(4));
      if (line[3] === '-') continue;
      this.replies.push(`${line.slice(0, 3)} ${this.pending.join(' ')}`.trimEnd());
      this.pending = [];
      this.waiter?.();
    }
  }
}
