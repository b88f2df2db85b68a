// The quarantine: one item per message, the raw bytes exactly as received (`ID.eml`) and its
// metadata (`ID.json`), in one directory that several gateway nodes may share (NFS, a shared volume).
// Durable before the client hears 250: each file is written to a temp name, fsynced, renamed, and the
// directory fsynced. The metadata file is written last, so its presence marks a complete item.
//
// There is no index besides the files: listing reads the directory. Ids are ULIDs (80 random bits,
// unique across nodes), so two writers never pick the same name; every later change of an item
// (release, delete) happens under `ID.lock`, created with O_EXCL (atomic on local disks and NFSv3+),
// and rewrites `ID.json` through a temp name unique to the writer. Everything an admin does is also
// appended to `audit.log` (JSON lines) in the same directory.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { parseHeaderBlock } from '../message/parsed.js';
import type { Observation } from '../inspect/spoof/learn.js';
import type { TrustedServers } from './trust.js';
import type { ScoredFinding } from '../verdict.js';
import type { Action } from '../policy/schema.js';

export type QuarantineState = 'held' | 'released' | 'deleted';

export interface HistoryEntry {
  at: string;
  /** quarantined | release-started | released | release-failed | release-unknown | deleted */
  event: string;
  by: string;
  /** the host that made the change (several nodes may share the store) */
  host?: string;
  /** recipients concerned (release) */
  recipients?: string[];
  /** what happened, for a human: the downstream's replies, a reason */
  detail?: string;
  /** sender-trusted: what the thread memory learned, for untrust to take back */
  trusted?: TrustedServers;
}

export interface QuarantineMetadata {
  id: string;
  receivedAt: string;
  client: { address: string; helo: string; name?: string };
  /** the client's MAIL and RCPT lines as sent, ESMTP parameters included */
  envelope: { mailFrom: string; mailLine: string; rcptTo: string[]; rcptLines: string[] };
  size: number;
  sha256: string;
  /** a few top-level header fields (decoded, as sent: may hold control characters), for list/show */
  headers?: { subject?: string; from?: string; messageId?: string };
  findings: ScoredFinding[];
  verdict: { action: Action; score: number; reason: string };
  policyVersion: string;
  state: QuarantineState;
  history: HistoryEntry[];
  /**
   * A release that started sending and has not recorded its outcome (the process died, or the
   * connection broke after the final dot): the downstream may or may not have the message.
   */
  pendingRelease?: { at: string; by: string; host: string; pid: number; recipients: string[] };
  /**
   * What the reply-chain checks saw of an inbound message as it arrived (the infrastructure it came
   * through, the quoted thread's names): what `release --trust-sender` teaches the thread memory.
   */
  observation?: Observation;
}

/** ULIDs only: nothing else can name a file here (no path traversal, no globbing). */
export const QUARANTINE_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

const ITEM_JSON = /^([0-9A-HJKMNP-TV-Z]{26})\.json$/;
const ULID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The millisecond timestamp in a ULID's first ten characters. */
export function ulidTime(id: string): number {
  let time = 0;
  for (const ch of id.slice(0, 10)) time = time * 32 + ULID_ALPHABET.indexOf(ch);
  return time;
}

/** Why an operation on the store failed, with what an admin needs to act: the file and the id. */
export class QuarantineError extends Error {
  override name = 'QuarantineError';
  constructor(
    message: string,
    /** invalid-id, not-found, corrupt, usage: bad input (exit 2); locked, state, io: refused or failed (exit 1) */
    readonly kind: 'invalid-id' | 'not-found' | 'corrupt' | 'usage' | 'locked' | 'state' | 'io',
  ) {
    super(message);
  }
}

// Metadata is data: parsed with JSON.parse and checked against this shape, never evaluated.
const text = z.string();
const metadataSchema = z.object({
  id: z.string().regex(QUARANTINE_ID),
  receivedAt: text,
  client: z.object({ address: text, helo: text }),
  envelope: z.object({ mailFrom: text, mailLine: text, rcptTo: z.array(text), rcptLines: z.array(text) }),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  headers: z.object({ subject: text.optional(), from: text.optional(), messageId: text.optional() }).optional(),
  findings: z.array(
    z.object({ symbol: text, score: z.number(), part: text.optional(), detail: text.optional(), sha256: text.optional(), excepted: text.optional() }),
  ),
  verdict: z.object({ action: z.enum(['relay', 'tag', 'quarantine', 'defer', 'reject']), score: z.number(), reason: text }),
  policyVersion: text,
  state: z.enum(['held', 'released', 'deleted']),
  history: z.array(
    z.object({
      at: text,
      event: text,
      by: text,
      host: text.optional(),
      recipients: z.array(text).optional(),
      detail: text.optional(),
      trusted: z.object({ address: text, domain: text.optional(), tokens: z.array(text) }).optional(),
    }),
  ),
  pendingRelease: z.object({ at: text, by: text, host: text, pid: z.number(), recipients: z.array(text) }).optional(),
  observation: z
    .object({
      quoted: z.array(z.object({ name: text, address: text, display: text })),
      infrastructure: z.object({ network: text, envelope: text, dkim: z.array(text), spf: z.enum(['pass', 'unknown', 'no']), host: text }).optional(),
    })
    .optional(),
});

/** Checks a metadata file's text; throws QuarantineError('corrupt') naming the file. */
export function parseMetadata(json: string, file: string, expectedId?: string): QuarantineMetadata {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new QuarantineError(`${file}: corrupt metadata: ${(err as Error).message}`, 'corrupt');
  }
  const parsed = metadataSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new QuarantineError(`${file}: corrupt metadata: ${issue.path.join('.') || '(top)'}: ${issue.message}`, 'corrupt');
  }
  if (expectedId && parsed.data.id !== expectedId) {
    throw new QuarantineError(`${file}: corrupt metadata: holds id ${parsed.data.id}, not ${expectedId}`, 'corrupt');
  }
  return parsed.data;
}

export function checkId(id: string): string {
  if (!QUARANTINE_ID.test(id)) {
    throw new QuarantineError(`invalid quarantine id ${JSON.stringify(id)}: expected a 26-character ULID such as 01J9Z3K4M5N6P7Q8R9S0T1V2W3`, 'invalid-id');
  }
  return id;
}

/** Who holds an item's lock. */
export interface LockInfo {
  host: string;
  pid: number;
  by: string;
  at: string;
  token: string;
}

export interface HeldLock {
  id: string;
  file: string;
  token: string;
}

/** A lock older than this is taken to belong to a dead process on another node. */
const LOCK_STALE_MS = 60 * 60 * 1000;

const HEADER_CAPTURE_BYTES = 64 * 1024;

export class QuarantineStore {
  constructor(readonly dir: string) {}

  emlFile(id: string): string {
    return path.join(this.dir, `${checkId(id)}.eml`);
  }

  jsonFile(id: string): string {
    return path.join(this.dir, `${checkId(id)}.json`);
  }

  lockFile(id: string): string {
    return path.join(this.dir, `${checkId(id)}.lock`);
  }

  get auditFile(): string {
    return path.join(this.dir, 'audit.log');
  }

  /** Stores the message and its metadata durably; resolves only once both are on disk. */
  async put(message: Readable, meta: Omit<QuarantineMetadata, 'sha256' | 'state' | 'history'>): Promise<QuarantineMetadata> {
    if (!QUARANTINE_ID.test(meta.id)) throw new Error(`invalid quarantine id ${JSON.stringify(meta.id)}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const hash = createHash('sha256');
    const emlTemp = path.join(this.dir, `.${meta.id}.eml.tmp`);
    const eml = path.join(this.dir, `${meta.id}.eml`);
    const head: Buffer[] = [];
    let headBytes = 0;
    try {
      const handle = await open(emlTemp, 'wx', 0o600);
      try {
        for await (const chunk of message) {
          hash.update(chunk as Buffer);
          if (headBytes < HEADER_CAPTURE_BYTES) {
            head.push(chunk as Buffer);
            headBytes += (chunk as Buffer).length;
          }
          await handle.write(chunk as Buffer);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(emlTemp, eml);
      const full: QuarantineMetadata = {
        ...meta,
        headers: meta.headers ?? summaryHeaders(Buffer.concat(head).subarray(0, HEADER_CAPTURE_BYTES)),
        sha256: hash.digest('hex'),
        state: 'held',
        history: [{ at: meta.receivedAt, event: 'quarantined', by: 'gateway', host: os.hostname() }],
      };
      await this.writeJson(full, `.${meta.id}.json.tmp`);
      await this.syncDir();
      return full;
    } catch (err) {
      await rm(emlTemp, { force: true });
      await rm(eml, { force: true });
      throw err;
    }
  }

  /** One item's metadata; QuarantineError not-found / corrupt naming the file. */
  async get(id: string): Promise<QuarantineMetadata> {
    const file = this.jsonFile(id);
    let json: string;
    try {
      json = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new QuarantineError(`no quarantined message ${id} in ${this.dir} (${file} does not exist)`, 'not-found');
      }
      throw new QuarantineError(`${file}: cannot read: ${(err as Error).message}`, 'io');
    }
    return parseMetadata(json, file, id);
  }

  /** The raw message as received; not-found when deleted or missing. */
  async openMessage(id: string): Promise<Readable> {
    const file = this.emlFile(id);
    try {
      await stat(file);
    } catch {
      throw new QuarantineError(`message file ${file} of ${id} is missing`, 'not-found');
    }
    return createReadStream(file);
  }

  async readMessage(id: string): Promise<Buffer> {
    const file = this.emlFile(id);
    try {
      return await readFile(file);
    } catch (err) {
      throw new QuarantineError(`message file ${file} of ${id} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'not-found');
    }
  }

  /** Checks the message file against the recorded size and SHA-256. */
  async verify(meta: QuarantineMetadata): Promise<void> {
    const file = this.emlFile(meta.id);
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of createReadStream(file)) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    } catch (err) {
      throw new QuarantineError(
        `message file ${file} of ${meta.id} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        'not-found',
      );
    }
    const digest = hash.digest('hex');
    if (digest !== meta.sha256 || size !== meta.size) {
      throw new QuarantineError(
        `${file}: does not match its metadata (sha256 ${digest}, ${size} bytes; recorded ${meta.sha256}, ${meta.size} bytes)`,
        'corrupt',
      );
    }
  }

  /**
   * Every item's id, oldest first, from the file names alone; `since` (ms epoch) skips older ids
   * without reading them (a ULID starts with its creation time).
   */
  async ids(since?: number): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new QuarantineError(`${this.dir}: cannot list: ${(err as Error).message}`, 'io');
    }
    const ids: string[] = [];
    for (const name of names) {
      const match = ITEM_JSON.exec(name);
      if (match && (since === undefined || ulidTime(match[1]) >= since)) ids.push(match[1]);
    }
    return ids.sort();
  }

  /**
   * The metadata of every item (derived from the files, nothing else), read a few at a time; items
   * whose metadata is unreadable or corrupt come back in `problems` instead.
   */
  async list(since?: number): Promise<{ items: QuarantineMetadata[]; problems: QuarantineError[] }> {
    const ids = await this.ids(since);
    const items = new Array<QuarantineMetadata | undefined>(ids.length);
    const problems: QuarantineError[] = [];
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const index = next++;
        try {
          items[index] = await this.get(ids[index]);
        } catch (err) {
          // removed by another node while we listed: not a problem
          if (err instanceof QuarantineError && err.kind === 'not-found') continue;
          problems.push(err instanceof QuarantineError ? err : new QuarantineError(String(err), 'io'));
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    return { items: items.filter((m): m is QuarantineMetadata => m !== undefined), problems };
  }

  /**
   * Takes the item's exclusive lock (O_EXCL create of `ID.lock`). A lock left by a dead process on
   * this host, or older than an hour, is broken; any other is reported as QuarantineError('locked').
   */
  async lock(id: string, by: string): Promise<HeldLock> {
    return this.lockAt(this.lockFile(id), id, by, 'another release or delete is in progress');
  }

  /** The lock of a whole digest run (`digest.lock`): one node sends at a time. */
  async lockDigest(by: string): Promise<HeldLock> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return this.lockAt(path.join(this.dir, 'digest.lock'), 'the digest', by, 'another node or command is sending digests');
  }

  private async lockAt(file: string, id: string, by: string, doing: string): Promise<HeldLock> {
    const info: LockInfo = { host: os.hostname(), pid: process.pid, by, at: new Date().toISOString(), token: randomBytes(12).toString('hex') };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(file, 'wx', 0o600);
        try {
          await handle.write(JSON.stringify(info) + '\n');
          await handle.sync();
        } finally {
          await handle.close();
        }
        return { id, file, token: info.token };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new QuarantineError(`${file}: cannot create lock: ${(err as Error).message}`, 'io');
        }
      }
      const holder = await readLock(file);
      if (!holder) continue; // released meanwhile
      if (attempt > 0 || !isStale(holder)) {
        throw new QuarantineError(
          `${id} is locked by ${holder.by} (pid ${holder.pid} on ${holder.host} since ${holder.at}): ${doing}; ` + `if that process is gone, remove ${file}`,
          'locked',
        );
      }
      await breakLock(file, holder);
    }
    throw new QuarantineError(`${file}: lock contended, try again`, 'locked');
  }

  async unlock(lock: HeldLock): Promise<void> {
    const holder = await readLock(lock.file);
    if (holder?.token === lock.token) await unlink(lock.file).catch(() => undefined);
  }

  /** Rewrites an item's metadata durably (temp name unique to this writer, fsync, rename, fsync dir). Hold the lock. */
  async update(meta: QuarantineMetadata): Promise<void> {
    await this.writeJson(meta, `.${meta.id}.json.${os.hostname().replace(/[^A-Za-z0-9.-]/g, '_')}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    await this.syncDir();
  }

  /** Removes the message bytes (the metadata stays as the record). Hold the lock. */
  async removeMessage(id: string): Promise<void> {
    await rm(this.emlFile(id), { force: true });
  }

  /** Removes the item entirely (purge). Hold the lock. */
  async removeItem(id: string): Promise<void> {
    await rm(this.emlFile(id), { force: true });
    await rm(this.jsonFile(id), { force: true });
    await this.syncDir();
  }

  /**
   * Temp files of writes that never finished (a crashed node), older than `olderThan` ms: purge
   * removes them. Never a fresh one: another node may be writing it right now.
   */
  async strayTempFiles(olderThan: number): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const stray: string[] = [];
    const items = new Set(names);
    for (const name of names) {
      const orphan = /^([0-9A-HJKMNP-TV-Z]{26})\.eml$/.exec(name);
      // a message file without metadata: its write never completed, so its client never heard 250
      if (orphan ? items.has(`${orphan[1]}.json`) : !/^\.([0-9A-HJKMNP-TV-Z]{26}|digest)\..*(tmp|stale)$/.test(name)) continue;
      const file = path.join(this.dir, name);
      const info = await stat(file).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > olderThan) stray.push(file);
    }
    return stray;
  }

  /**
   * A small JSON record of the store's own beside the items (`digest.json`: when each recipient last
   * had a digest), written like metadata: temp name, fsync, rename, fsync the directory. Hold its lock.
   */
  async writeRecord(name: string, value: unknown): Promise<void> {
    const file = this.recordFile(name);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const temp = `${path.join(this.dir, '.' + name)}.${os.hostname().replace(/[^A-Za-z0-9.-]/g, '_')}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.write(JSON.stringify(value) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.syncDir();
  }

  /** The record's parsed JSON, undefined when there is none yet; QuarantineError('corrupt') naming the file when it is not JSON. */
  async readRecord(name: string): Promise<unknown> {
    const file = this.recordFile(name);
    let json: string;
    try {
      json = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new QuarantineError(`${file}: cannot read: ${(err as Error).message}`, 'io');
    }
    try {
      return JSON.parse(json) as unknown;
    } catch (err) {
      throw new QuarantineError(`${file}: corrupt: ${(err as Error).message}`, 'corrupt');
    }
  }

  private recordFile(name: string): string {
    if (!/^[a-z][a-z0-9-]*\.json$/.test(name)) throw new Error(`bad record name ${JSON.stringify(name)}`);
    return path.join(this.dir, name);
  }

  /** One line of the audit log (JSON): time, action, id, operator, result, details. */
  async audit(entry: { action: string; id: string; operator: string; result: string; [key: string]: unknown }): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const line = JSON.stringify({ time: new Date().toISOString(), ...entry, host: os.hostname() }) + '\n';
    await appendFile(this.auditFile, line, { mode: 0o600 });
  }

  private async writeJson(meta: QuarantineMetadata, tempName: string): Promise<void> {
    const temp = path.join(this.dir, tempName);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.write(JSON.stringify(meta, null, 2) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, path.join(this.dir, `${meta.id}.json`));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  private async syncDir(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  let json: string;
  try {
    json = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(json) as Partial<LockInfo>;
    if (typeof value.host === 'string' && typeof value.pid === 'number' && typeof value.token === 'string' && typeof value.at === 'string') {
      return { host: value.host, pid: value.pid, by: String(value.by ?? '?'), at: value.at, token: value.token };
    }
  } catch {
    // a half-written lock: its writer is between create and write, or died there
  }
  const info = await stat(file).catch(() => undefined);
  return { host: '?', pid: 0, by: '?', at: info ? new Date(info.mtimeMs).toISOString() : new Date(0).toISOString(), token: '' };
}

function isStale(holder: LockInfo): boolean {
  if (holder.host === os.hostname() && holder.pid > 0 && !processAlive(holder.pid)) return true;
  const at = Date.parse(holder.at);
  return Number.isFinite(at) && Date.now() - at > LOCK_STALE_MS;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves a stale lock aside. Two processes may both find the same lock stale: only the one whose
 * rename moved that very lock (same token) goes on; if a fresh lock was moved by mistake it is put
 * back (link fails when someone already made another one, then both give up).
 */
async function breakLock(file: string, stale: LockInfo): Promise<void> {
  const aside = `${path.join(path.dirname(file), '.' + path.basename(file))}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(file, aside);
  } catch {
    return; // someone else moved it
  }
  const moved = await readLock(aside);
  if (moved && moved.token !== stale.token) {
    const { link } = await import('node:fs/promises');
    await link(aside, file).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

/** Subject, From and Message-ID from the start of the message (decoded; may hold control characters). */
function summaryHeaders(head: Buffer): QuarantineMetadata['headers'] {
  const textHead = head.toString('utf8');
  const end = textHead.search(/\r?\n\r?\n/);
  const fields = parseHeaderBlock(end === -1 ? textHead : textHead.slice(0, end));
  const pick = (name: string) => fields.find((f) => f.name === name)?.value;
  const result: NonNullable<QuarantineMetadata['headers']> = {};
  const subject = pick('subject');
  const from = pick('from');
  const messageId = pick('message-id');
  if (subject !== undefined) result.subject = subject;
  if (from !== undefined) result.from = from;
  if (messageId !== undefined) result.messageId = messageId;
  return result;
}
