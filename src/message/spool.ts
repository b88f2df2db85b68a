// Holds the bytes of one message exactly as received, between DATA and the verdict: in memory up to
// spool.memoryLimit, then in a private temp file, so a 20 MB attachment costs no 20 MB of heap per client.
// Past limits.maxMessageSize it stops storing (and only counts), so an oversized message is refused
// with 552 without ever being buffered whole.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

export class Spool extends Writable {
  private chunks: Buffer[] = [];
  private memoryBytes = 0;
  private file: { path: string; handle: FileHandle | undefined } | undefined;
  /** bytes received, including any past the size limit */
  received = 0;
  exceeded = false;

  constructor(
    private readonly dir: string,
    private readonly memoryLimit: number,
    private readonly maxSize: number,
  ) {
    super();
  }

  /**
   * Stores everything the source delivers; resolves once it is all stored, rejects when either side
   * fails. (Not stream/promises pipeline: it aborts an AbortController when it finishes, which builds
   * a DOMException with a stack trace for every message: 2.5% of the gateway's CPU under load.)
   */
  async receive(source: Readable): Promise<void> {
    source.once('error', (err) => this.destroy(err));
    source.pipe(this);
    try {
      await finished(this);
    } catch (err) {
      // pipe() left the source paused: let it run to its end, for smtp-server answers the client
      // only once the DATA stream has ended (a disk that fails mid-message must not hang the client)
      source.resume();
      throw err;
    }
  }

  get size(): number {
    return this.exceeded ? 0 : this.received;
  }

  get onDisk(): boolean {
    return this.file !== undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.received += chunk.length;
    if (this.exceeded) return callback();
    if (this.received > this.maxSize) {
      this.exceeded = true;
      this.chunks = [];
      this.discardFile().then(() => callback(), callback);
      return;
    }
    if (!this.file && this.memoryBytes + chunk.length <= this.memoryLimit) {
      this.chunks.push(chunk);
      this.memoryBytes += chunk.length;
      return callback();
    }
    this.toFile(chunk).then(() => callback(), callback);
  }

  private async toFile(chunk: Buffer): Promise<void> {
    if (!this.file) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const file = path.join(this.dir, `${randomUUID()}.eml`);
      this.file = { path: file, handle: await open(file, 'wx', 0o600) };
      for (const held of this.chunks) await this.file.handle!.write(held);
      this.chunks = [];
      this.memoryBytes = 0;
    }
    await this.file.handle!.write(chunk);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const handle = this.file?.handle;
    if (!handle) return callback();
    this.file!.handle = undefined;
    handle.close().then(() => callback(), callback);
  }

  /** A fresh stream of the stored bytes; call after the spool has finished. */
  read(): Readable {
    if (this.exceeded) throw new Error('spool: message exceeded the size limit and was not stored');
    return this.file ? createReadStream(this.file.path) : Readable.from(this.chunks, { objectMode: false });
  }

  /** The stored bytes when they are held in memory (no copy), else undefined: read() streams the file. */
  inMemory(): Buffer[] | undefined {
    if (this.exceeded) throw new Error('spool: message exceeded the size limit and was not stored');
    return this.file ? undefined : this.chunks;
  }

  /** The first `max` bytes (the header block lives there): no full read for a large message. */
  async head(max: number): Promise<Buffer> {
    if (this.exceeded) throw new Error('spool: message exceeded the size limit and was not stored');
    if (!this.file) {
      const first: Buffer[] = [];
      let length = 0;
      for (const chunk of this.chunks) {
        if (length >= max) break;
        first.push(chunk);
        length += chunk.length;
      }
      return Buffer.concat(first).subarray(0, max);
    }
    const handle = await open(this.file.path, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(max, this.received));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  private async discardFile(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    if (!file) return;
    await file.handle?.close().catch(() => undefined);
    await rm(file.path, { force: true });
  }

  /** Frees memory and removes the temp file. */
  async dispose(): Promise<void> {
    this.chunks = [];
    await this.discardFile();
  }
}
