// The quarantine: one item per message, the raw bytes exactly as received (`ID.eml`) and its
// metadata (`ID.json`), in one directory that several gateway nodes may share. Durable before the
// client hears 250: each file is written to a temp name, fsynced, renamed, and the directory fsynced.
// The metadata file is written last, so its presence marks a complete item.
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ScoredFinding } from '../verdict.js';
import type { Action } from '../policy/schema.js';

export interface QuarantineMetadata {
  id: string;
  receivedAt: string;
  client: { address: string; helo: string };
  /** the client's MAIL and RCPT lines as sent, ESMTP parameters included */
  envelope: { mailFrom: string; mailLine: string; rcptTo: string[]; rcptLines: string[] };
  size: number;
  sha256: string;
  findings: ScoredFinding[];
  verdict: { action: Action; score: number; reason: string };
  policyVersion: string;
  state: 'held' | 'released' | 'deleted';
  history: { at: string; event: string; by: string }[];
}

/** ULIDs only: nothing else can name a file here (no path traversal, no globbing). */
export const QUARANTINE_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export class QuarantineStore {
  constructor(readonly dir: string) {}

  /** Stores the message and its metadata durably; resolves only once both are on disk. */
  async put(message: Readable, meta: Omit<QuarantineMetadata, 'sha256' | 'state' | 'history'>): Promise<QuarantineMetadata> {
    if (!QUARANTINE_ID.test(meta.id)) throw new Error(`invalid quarantine id ${JSON.stringify(meta.id)}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const hash = createHash('sha256');
    const emlTemp = path.join(this.dir, `.${meta.id}.eml.tmp`);
    const eml = path.join(this.dir, `${meta.id}.eml`);
    try {
      const handle = await open(emlTemp, 'wx', 0o600);
      try {
        for await (const chunk of message) {
          hash.update(chunk as Buffer);
          await handle.write(chunk as Buffer);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(emlTemp, eml);
      const full: QuarantineMetadata = {
        ...meta,
        sha256: hash.digest('hex'),
        state: 'held',
        history: [{ at: meta.receivedAt, event: 'quarantined', by: 'gateway' }],
      };
      await this.writeJson(full);
      await this.syncDir();
      return full;
    } catch (err) {
      await rm(emlTemp, { force: true });
      await rm(eml, { force: true });
      throw err;
    }
  }

  private async writeJson(meta: QuarantineMetadata): Promise<void> {
    const temp = path.join(this.dir, `.${meta.id}.json.tmp`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.write(JSON.stringify(meta, null, 2) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path.join(this.dir, `${meta.id}.json`));
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
