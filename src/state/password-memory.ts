// What the gateway remembers for the separate password mail ("PPAP": the encrypted zip in one
// message, its password in the next): per envelope sender, the encrypted items it holds as
// unscannable (quarantine id, recipients) and the password candidates of the sender's recent relayed
// mail. Whichever of the pair comes second finds the first here (src/quarantine/password-pairs.ts).
//
// Two backends with one contract (test/unit/password-memory.test.ts runs the same suite on both):
// Redis (every gateway node shares it; one hash per sender, one round trip per call, the key's TTL
// refreshed on write) and the embedded twin (bounded by sender count). Both keep at most
// MAX_PER_KIND records of each kind per sender, drop records older than the wait, and store the
// sender and recipients only as hashes. The candidates are kept in clear for the wait: they must be
// tried, and they are the ones the relayed mail itself carries.
import { createHash } from 'node:crypto';
import type { StateBackend } from './index.js';

type RedisClient = Extract<StateBackend, { kind: 'redis' }>['redis'];

/** An encrypted item in quarantine, waiting for its password. */
export interface HeldRecord {
  /** quarantine id */
  id: string;
  /** hashed recipients (recipientHash) */
  rcpt: string[];
  /** when it was held (ms since epoch) */
  at: number;
  /** password mails tried on it so far without opening it */
  tries: number;
}

/** The password candidates of a relayed message. */
export interface PasswordsRecord {
  /** the message's id (the gateway's, as in its log line) */
  mailId: string;
  rcpt: string[];
  at: number;
  passwords: string[];
}

export interface SenderRecords {
  held: HeldRecord[];
  passwords: PasswordsRecord[];
}

export interface PasswordMemory {
  rememberHeld(sender: string, record: HeldRecord, waitMs: number): Promise<void>;
  rememberPasswords(sender: string, record: PasswordsRecord, waitMs: number): Promise<void>;
  /** the sender's records younger than waitMs, newest first */
  lookup(sender: string, waitMs: number): Promise<SenderRecords>;
  forgetHeld(sender: string, id: string): Promise<void>;
}

export class PasswordMemoryUnavailable extends Error {
  override name = 'PasswordMemoryUnavailable';
}

/** Records of each kind kept per sender (the newest). */
export const MAX_PER_KIND = 16;

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

/** A recipient as it is stored: lower-case, hashed (no addresses in clear in the state). */
export function recipientHash(address: string): string {
  return digest(`r:${address.trim().toLowerCase()}`);
}

function senderKey(sender: string): string {
  return digest(`s:${sender.trim().toLowerCase()}`);
}

const HELD = 'h:';
const PASSWORDS = 'p:';

/**
 * Stores one record (field ARGV[1], JSON with `at`), refreshes the key's TTL, drops the sender's
 * records older than the wait and keeps the newest ARGV[5] of the record's kind.
 */
const REMEMBER = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local wait = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local max = tonumber(ARGV[5])
local kind = string.sub(ARGV[1], 1, 2)
local all = redis.call('HGETALL', KEYS[1])
local mine = {}
for i = 1, #all, 2 do
  local ok, rec = pcall(cjson.decode, all[i + 1])
  local at = 0
  if ok and type(rec) == 'table' and tonumber(rec.at) then at = tonumber(rec.at) end
  if at + wait <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif string.sub(all[i], 1, 2) == kind then
    mine[#mine + 1] = { all[i], at }
  end
end
if #mine > max then
  table.sort(mine, function(a, b) return a[2] < b[2] end)
  for i = 1, #mine - max do redis.call('HDEL', KEYS[1], mine[i][1]) end
end
return 1`;

function parse(fields: [string, string][], waitMs: number, now: number): SenderRecords {
  const held: HeldRecord[] = [];
  const passwords: PasswordsRecord[] = [];
  for (const [field, json] of fields) {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      continue;
    }
    const r = value as Partial<HeldRecord & PasswordsRecord>;
    if (typeof r.at !== 'number' || r.at + waitMs <= now || !Array.isArray(r.rcpt)) continue;
    if (field.startsWith(HELD) && typeof r.id === 'string') held.push({ id: r.id, rcpt: r.rcpt, at: r.at, tries: Number(r.tries) || 0 });
    if (field.startsWith(PASSWORDS) && typeof r.mailId === 'string' && Array.isArray(r.passwords)) {
      passwords.push({ mailId: r.mailId, rcpt: r.rcpt, at: r.at, passwords: r.passwords.filter((p): p is string => typeof p === 'string') });
    }
  }
  held.sort((a, b) => b.at - a.at);
  passwords.sort((a, b) => b.at - a.at);
  return { held, passwords };
}

export class RedisPasswordMemory implements PasswordMemory {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'mailmoat:ppap:',
    private readonly now: () => number = Date.now,
  ) {}

  private key(sender: string): string {
    return this.prefix + senderKey(sender);
  }

  rememberHeld(sender: string, record: HeldRecord, waitMs: number): Promise<void> {
    return this.remember(sender, HELD + record.id, record, waitMs);
  }

  rememberPasswords(sender: string, record: PasswordsRecord, waitMs: number): Promise<void> {
    return this.remember(sender, PASSWORDS + record.mailId, record, waitMs);
  }

  async lookup(sender: string, waitMs: number): Promise<SenderRecords> {
    const all = await this.run(() => this.redis.hgetall(this.key(sender)));
    return parse(Object.entries(all), waitMs, this.now());
  }

  async forgetHeld(sender: string, id: string): Promise<void> {
    await this.run(() => this.redis.hdel(this.key(sender), HELD + id));
  }

  private async remember(sender: string, field: string, record: HeldRecord | PasswordsRecord, waitMs: number): Promise<void> {
    await this.run(() => this.redis.eval(REMEMBER, 1, this.key(sender), field, JSON.stringify(record), Math.max(1, waitMs), this.now(), MAX_PER_KIND));
  }

  /** A command that cannot run (Redis down, offline queue off) or times out (commandTimeout) is "unavailable". */
  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new PasswordMemoryUnavailable((err as Error).message);
    }
  }
}

/** The embedded twin: the same contract in process memory, at most maxSenders senders (least recently written dropped first). */
export class MemoryPasswordMemory implements PasswordMemory {
  private readonly senders = new Map<string, { expires: number; fields: Map<string, string> }>();

  constructor(
    private readonly maxSenders = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  async rememberHeld(sender: string, record: HeldRecord, waitMs: number): Promise<void> {
    this.remember(sender, HELD + record.id, record, waitMs);
  }

  async rememberPasswords(sender: string, record: PasswordsRecord, waitMs: number): Promise<void> {
    this.remember(sender, PASSWORDS + record.mailId, record, waitMs);
  }

  async lookup(sender: string, waitMs: number): Promise<SenderRecords> {
    const entry = this.entry(senderKey(sender));
    return parse(entry ? [...entry.fields] : [], waitMs, this.now());
  }

  async forgetHeld(sender: string, id: string): Promise<void> {
    this.entry(senderKey(sender))?.fields.delete(HELD + id);
  }

  private entry(key: string) {
    const entry = this.senders.get(key);
    if (entry && entry.expires <= this.now()) {
      this.senders.delete(key);
      return undefined;
    }
    return entry;
  }

  private remember(sender: string, field: string, record: HeldRecord | PasswordsRecord, waitMs: number): void {
    const key = senderKey(sender);
    const now = this.now();
    const fields = this.entry(key)?.fields ?? new Map<string, string>();
    fields.set(field, JSON.stringify(record));
    const kept = parse([...fields], waitMs, now);
    const keep = new Set([
      ...kept.held.slice(0, MAX_PER_KIND).map((r) => HELD + r.id),
      ...kept.passwords.slice(0, MAX_PER_KIND).map((r) => PASSWORDS + r.mailId),
    ]);
    for (const name of [...fields.keys()]) if (!keep.has(name)) fields.delete(name);
    this.senders.delete(key); // re-insert: Map order is the eviction order
    this.senders.set(key, { expires: now + waitMs, fields });
    while (this.senders.size > this.maxSenders) this.senders.delete(this.senders.keys().next().value!);
  }
}

const embedded = new WeakMap<StateBackend, PasswordMemory>();

/** The password memory of a state backend: one embedded twin per in-memory backend, or Redis. */
export function passwordMemoryFor(state: StateBackend): PasswordMemory {
  let memory = embedded.get(state);
  if (!memory) {
    memory = state.kind === 'redis' ? new RedisPasswordMemory(state.redis) : new MemoryPasswordMemory();
    embedded.set(state, memory);
  }
  return memory;
}
