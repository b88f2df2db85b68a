// Holds the bytes of one message exactly as received, between DATA and the verdict: in memory up to
// spool.memoryLimit, then in a private temp file, so a 20 MB attachment costs no 20 MB of heap per client.
// Past limits.maxMessageSize it stops storing (and only counts), so an oversized message is refused
// with 552 without ever being buffered whole.
//
// The bytes a spool keeps in memory come from the process's memory budget (memory-budget.ts): when
// the budget has no room, or messages wait for it, the message goes to its file instead, and spill()
// moves a message already in memory to its file before it waits for its inspection.
//
// A spool file never outlives its message: dispose() waits for a write still opening or filling the
// file (a client that vanishes while the message spills to disk), every live spool is disposed at
// shutdown (disposeAllSpools), and a file left by a process killed outright is removed at the next
// start (cleanSpoolDir: file names carry the owning process's pid).
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { memoryBudget, type MemoryBudget } from './memory-budget.js';

/** Spools of this process that still hold bytes (or a file): disposed at shutdown whatever their owner does. */
const live = new Set<Spool>();

/** No space left (ENOSPC, EDQUOT): the client is told the mail system is full (452 4.3.1), not a generic failure. */
export function isStorageFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export class SpoolDisposedError extends Error {
  override name = 'SpoolDisposedError';
  constructor() {
    super('spool: the message was abandoned');
  }
}

export class Spool extends Writable {
  private chunks: Buffer[] = [];
  private memoryBytes = 0;
  private file: { path: string; handle: FileHandle | undefined } | undefined;
  /** the file operation under way (opening the file, a write, the final close): dispose() waits for it */
  private pending: Promise<void> | undefined;
  private disposing: Promise<void> | undefined;
  /** bytes received, including any past the size limit */
  received = 0;
  exceeded = false;

  constructor(
    private readonly dir: string,
    private readonly memoryLimit: number,
    private readonly maxSize: number,
    /** where the bytes kept in memory are counted */
    private readonly budget: MemoryBudget = memoryBudget,
  ) {
    super();
    live.add(this);
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
      source.unpipe(this);
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

  get disposed(): boolean {
    return this.disposing !== undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.disposing) return callback(new SpoolDisposedError());
    this.received += chunk.length;
    if (this.exceeded) return callback();
    if (this.received > this.maxSize) {
      this.exceeded = true;
      this.dropMemory();
      this.track(this.discardFile(), callback);
      return;
    }
    if (!this.file && this.memoryBytes + chunk.length <= this.memoryLimit && this.budget.take(chunk.length)) {
      this.chunks.push(chunk);
      this.memoryBytes += chunk.length;
      return callback();
    }
    this.track(this.toFile(chunk), callback);
  }

  /** Runs a file operation so that dispose() can wait for it, and reports its outcome to the stream. */
  private track(operation: Promise<void>, callback: (error?: Error | null) => void): void {
    const settled = operation.then(
      () => (this.disposing ? callback(new SpoolDisposedError()) : callback()),
      (err: Error) => callback(err),
    );
    this.pending = settled;
  }

  private async toFile(chunk: Buffer): Promise<void> {
    if (!this.file) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const file = path.join(this.dir, `${process.pid}-${randomUUID()}.eml`);
      // recorded before the open resolves, so a dispose() racing the open still knows what to remove
      this.file = { path: file, handle: undefined };
      this.file.handle = await open(file, 'wx', 0o600);
      for (const held of this.chunks) await this.file.handle.write(held);
      this.dropMemory();
    }
    if (chunk.length) await this.file.handle!.write(chunk);
  }

  /** The bytes kept in memory let go, and given back to the budget. */
  private dropMemory(): void {
    this.chunks = [];
    this.budget.give(this.memoryBytes);
    this.memoryBytes = 0;
  }

  /**
   * Moves a finished message held in memory to its file and gives its bytes back to the budget: a
   * message that is about to wait for the budget must hold none of it. Call before reading.
   */
  async spill(): Promise<void> {
    this.assertReadable();
    if (this.file || !this.memoryBytes) return;
    const written = (async () => {
      await this.toFile(Buffer.alloc(0));
      const handle = this.file!.handle!;
      this.file!.handle = undefined;
      await handle.close();
    })();
    // dispose() waits for the write (a client that vanishes meanwhile): a failure is reported here, not there
    this.pending = written.catch(() => undefined);
    await written;
  }

  override _final(callback: (error?: Error | null) => void): void {
    const handle = this.file?.handle;
    if (!handle) return callback();
    this.file!.handle = undefined;
    this.track(handle.close(), callback);
  }

  /** A fresh stream of the stored bytes; call after the spool has finished. */
  read(): Readable {
    this.assertReadable();
    return this.file ? createReadStream(this.file.path) : Readable.from(this.chunks, { objectMode: false });
  }

  /** The stored bytes when they are held in memory (no copy), else undefined: read() streams the file. */
  inMemory(): Buffer[] | undefined {
    this.assertReadable();
    return this.file ? undefined : this.chunks;
  }

  /** The first `max` bytes (the header block lives there): no full read for a large message. */
  async head(max: number): Promise<Buffer> {
    this.assertReadable();
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

  private assertReadable(): void {
    if (this.exceeded) throw new Error('spool: message exceeded the size limit and was not stored');
    if (this.disposing) throw new SpoolDisposedError();
  }

  private async discardFile(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    if (!file) return;
    await file.handle?.close().catch(() => undefined);
    await rm(file.path, { force: true });
  }

  /**
   * Frees memory and removes the temp file, once any file operation under way has settled; later
   * writes fail with SpoolDisposedError. Safe to call more than once (the same promise).
   */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.dropMemory();
      // a write may be opening the file right now: wait, then remove what it made
      while (this.pending) {
        const pending = this.pending;
        await pending;
        if (this.pending === pending) this.pending = undefined;
      }
      await this.discardFile();
      live.delete(this);
    })();
    return this.disposing;
  }
}

/** Shutdown: every spool of this process disposed, whoever holds it (a transaction cut short by the drain deadline). */
export async function disposeAllSpools(): Promise<number> {
  const spools = [...live];
  await Promise.all(spools.map((s) => s.dispose().catch(() => undefined)));
  return spools.length;
}

/** A process that still exists (EPERM: it exists, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Files in the spool directory whose owner is gone: older than this when the name carries no pid (an older version's). */
const UNOWNED_GRACE_MS = 3_600_000;

/**
 * Start-up: removes spool files that no running process owns. A file is named `<pid>-<uuid>.eml`;
 * it is left alone while that process runs (another gateway sharing the directory), removed when
 * the process is gone or is this one (a pid reused after a restart, as pid 1 in a container).
 */
export async function cleanSpoolDir(dir: string, now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.endsWith('.eml')) continue;
    const file = path.join(dir, name);
    const owner = /^(\d+)-/.exec(name);
    let orphan: boolean;
    if (owner) {
      const pid = Number(owner[1]);
      orphan = pid === process.pid || !processAlive(pid);
    } else {
      const info = await stat(file).catch(() => undefined);
      orphan = !!info && now - info.mtimeMs > UNOWNED_GRACE_MS;
    }
    if (orphan) {
      await rm(file, { force: true });
      removed.push(name);
    }
  }
  return removed;
}
