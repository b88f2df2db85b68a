// Thread and correspondent memory for the reply-chain checks: who took part in the threads the
// organisation sent (Message-ID → sender and recipients), which addresses each written form of a name
// (a name key) has been seen with, which organisational domains and addresses the organisation
// corresponds with, and the infrastructure each correspondent's (and each domain's) genuine mail came
// through: envelope organisation, DKIM signing organisation, client network.
// Two backends with one contract (test/unit/spoof-memory.test.ts runs the same suite on both):
// Redis (every gateway node shares it; one pipelined round trip per lookup and one per update,
// hashed keys, every key with a TTL) and the embedded in-memory twin (bounded by entry count).
import { hash } from 'node:crypto';
import type { StateBackend } from './index.js';

/** The backend's Redis client (standalone, Sentinel or Cluster). */
type RedisClient = Extract<StateBackend, { kind: 'redis' }>['redis'];

export interface ThreadPerson {
  /** lower-case address */
  address: string;
  /** the name keys of the display name (src/inspect/spoof/name-keys.ts; [] when none) */
  names: string[];
}

/** A name key bound to an address: the address was seen with that name. */
export interface NameBinding {
  name: string;
  address: string;
}

export interface ThreadRecord {
  /** who sent the remembered message */
  from: ThreadPerson;
  /** its envelope and header recipients (To, Cc, Bcc) */
  to: ThreadPerson[];
  /** when it was relayed (ms since epoch) */
  at: number;
}

export interface MemoryLookup {
  /** Message-IDs the inbound message refers to (In-Reply-To, References), without <> */
  messageIds: string[];
  /** the name keys of the sender's display name ([] to skip); at most MAX_LOOKUP_NAMES are looked up */
  names: string[];
  /** the sender's address */
  address: string;
  /** the sender's organisational domain */
  domain: string;
}

export interface MemoryFacts {
  /** the remembered threads among messageIds */
  threads: ThreadRecord[];
  /** addresses seen with any of the sender's name keys */
  nameAddresses: string[];
  /** the sender's address has been seen as a correspondent */
  addressKnown: boolean;
  /** the sender's organisational domain has been seen as a correspondent */
  domainKnown: boolean;
  /** infrastructure tokens ('net:…', 'env:…', 'dkim:…') of genuine mail from the sender's address and from its domain */
  infrastructure: { address: string[]; domain: string[] };
}

/** What one genuine message showed about its sender's infrastructure. */
export interface InfrastructureUpdate {
  address: string;
  domain: string;
  /** 'net:198.51.100.0/24', 'env:esp.example', 'dkim:partner.example' … */
  tokens: string[];
  /**
   * 'now' (the default): the tokens are the sender's from this message on. 'second-sighting': mail
   * nothing could vouch for (DNS unreachable) is only noted; a token is learned (per domain) when a
   * second such message shows it again.
   */
  learn?: 'now' | 'second-sighting';
}

export interface MemoryUpdate {
  threads: { messageId: string; record: ThreadRecord }[];
  /** name key ↔ address bindings to learn */
  bindings: NameBinding[];
  /** correspondent addresses and their organisational domains */
  addresses: string[];
  domains: string[];
  /** infrastructure seen with genuine mail, per sender address and per sending domain */
  infrastructure: InfrastructureUpdate[];
}

export interface ThreadMemory {
  lookup(query: MemoryLookup): Promise<MemoryFacts>;
  update(update: MemoryUpdate, ttlMs: number): Promise<void>;
  /**
   * The correspondent domains (MemoryUpdate.domains) still remembered, each with when it will be
   * forgotten (ms since epoch); with `after`, only those remembered past it (an incremental read).
   * The lookalike check's targets: it needs the names themselves, so they are kept in clear.
   */
  knownDomains(after?: number): Promise<{ domain: string; expires: number }[]>;
  /**
   * Forgets infrastructure tokens of an address and of a domain (and the domain's unconfirmed
   * sightings of them): an admin taking back a trust given by mistake. Genuine mail teaches them
   * again.
   */
  forgetInfrastructure(forget: { address: string; domain: string; tokens: string[] }): Promise<void>;
}

export class ThreadMemoryUnavailable extends Error {
  override name = 'ThreadMemoryUnavailable';
}

/**
 * Key material is hashed: no addresses or names in clear in Redis, fixed key length. One-shot
 * hashing: a message makes a dozen of these, and a Hash object each was ~2% of the gateway's CPU.
 */
export function hashKey(kind: string, value: string): string {
  return `${kind}:${hash('sha256', value, 'base64url').slice(0, 22)}`;
}

/** At most this many referenced Message-IDs are looked up (the nearest ones: In-Reply-To, last References). */
export const MAX_LOOKUP_IDS = 20;
/** Addresses kept per name key. */
export const MAX_NAME_ADDRESSES = 32;
/** Name keys looked up per message (a bilingual name has two). */
export const MAX_LOOKUP_NAMES = 4;
/** Infrastructure tokens kept per sender address and per domain (a large sender's many networks). */
export const MAX_ADDRESS_INFRASTRUCTURE = 32;
export const MAX_DOMAIN_INFRASTRUCTURE = 64;
/** Correspondent domains listed for the lookalike check (those that will be forgotten first are dropped). */
export const MAX_KNOWN_DOMAINS = 50_000;

/**
 * Adds a field to a bounded hash (field → last seen) and keeps at most ARGV[4] fields, dropping the
 * least recently seen: a name shared by many senders (or an attacker cycling addresses), a sender on
 * ever new networks, cannot grow a key without bound. Runs inside the update pipeline, so it costs no
 * extra round trip.
 */
const BOUNDED_ADD_FUNCTION = `
local function bounded_add(key, field, now, ttl, max)
  redis.call('HSET', key, field, now)
  redis.call('PEXPIRE', key, ttl)
  if redis.call('HLEN', key) > max then
    local all = redis.call('HGETALL', key)
    local entries = {}
    for i = 1, #all, 2 do entries[#entries + 1] = { all[i], tonumber(all[i + 1]) } end
    table.sort(entries, function(a, b) return a[2] < b[2] end)
    for i = 1, #entries - max do redis.call('HDEL', key, entries[i][1]) end
  end
end`;
const BOUNDED_ADD = `${BOUNDED_ADD_FUNCTION}
bounded_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
return 1`;
/** KEYS[1] the sightings, KEYS[2] the learned tokens: a token seen before is learned now. */
const SIGHTING_ADD = `${BOUNDED_ADD_FUNCTION}
local seen = redis.call('HEXISTS', KEYS[1], ARGV[1])
bounded_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
if seen == 1 then bounded_add(KEYS[2], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])) end
return seen`;

/** The list of known domains lives as long as its longest-remembered member (a short TTL must not cut the rest). */
const EXPIRE_WITH_LAST = `
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1`;

function ids(query: MemoryLookup): string[] {
  return [...new Set(query.messageIds.map((id) => id.trim().toLowerCase()).filter(Boolean))].slice(0, MAX_LOOKUP_IDS);
}

function names(query: MemoryLookup): string[] {
  return [...new Set(query.names.filter(Boolean))].slice(0, MAX_LOOKUP_NAMES);
}

/** A person of a stored record; records written before name keys carry one normalised `name`. */
function person(p: { address?: unknown; names?: unknown; name?: unknown }): ThreadPerson {
  const address = typeof p.address === 'string' ? p.address : '';
  if (Array.isArray(p.names)) return { address, names: p.names.filter((n): n is string => typeof n === 'string') };
  return { address, names: typeof p.name === 'string' && p.name ? [p.name] : [] };
}

function parseRecord(value: string | null | undefined): ThreadRecord | null {
  if (!value) return null;
  try {
    const r = JSON.parse(value) as { from?: object; to?: unknown; at?: number };
    if (!r || !r.from || !Array.isArray(r.to)) return null;
    return { from: person(r.from), to: (r.to as object[]).map(person), at: Number(r.at) || 0 };
  } catch {
    return null;
  }
}

export class RedisThreadMemory implements ThreadMemory {
  constructor(
    private readonly redis: RedisClient,
    /** one hash tag for all keys: a pipeline's keys share a slot on Redis Cluster */
    private readonly prefix = '{mailmoat:thread}:',
    private readonly timeoutMs = 1000,
  ) {}

  private key(kind: string, value: string): string {
    return this.prefix + hashKey(kind, value);
  }

  async lookup(query: MemoryLookup): Promise<MemoryFacts> {
    const messageIds = ids(query);
    const p = this.redis.pipeline();
    for (const id of messageIds) p.get(this.key('t', id));
    const keys = names(query);
    for (const name of keys) p.hkeys(this.key('n', name));
    p.exists(this.key('a', query.address.toLowerCase()));
    p.exists(this.key('d', query.domain.toLowerCase()));
    p.hkeys(this.key('ia', query.address.toLowerCase()));
    p.hkeys(this.key('id', query.domain.toLowerCase()));
    const results = await this.run(() => p.exec());
    const values = results.map(([err, value]) => {
      if (err) throw new ThreadMemoryUnavailable(err.message);
      return value;
    });
    const threads = values
      .slice(0, messageIds.length)
      .map((v) => parseRecord(v as string | null))
      .filter((r): r is ThreadRecord => !!r);
    let i = messageIds.length;
    const nameAddresses = new Set<string>();
    for (let n = 0; n < keys.length; n++) for (const a of (values[i++] as string[] | null) ?? []) nameAddresses.add(a);
    const addressKnown = values[i++] === 1;
    const domainKnown = values[i++] === 1;
    const infrastructure = { address: (values[i++] as string[] | null) ?? [], domain: (values[i] as string[] | null) ?? [] };
    return { threads, nameAddresses: [...nameAddresses], addressKnown, domainKnown, infrastructure };
  }

  async update(update: MemoryUpdate, ttlMs: number): Promise<void> {
    const p = this.redis.pipeline();
    const now = Date.now();
    for (const { messageId, record } of update.threads) p.set(this.key('t', messageId.trim().toLowerCase()), JSON.stringify(record), 'PX', ttlMs);
    for (const { name, address } of update.bindings) {
      if (!name || !address) continue;
      p.eval(BOUNDED_ADD, 1, this.key('n', name), address.toLowerCase(), now, ttlMs, MAX_NAME_ADDRESSES);
    }
    for (const { address, domain, tokens, learn } of update.infrastructure) {
      for (const token of new Set(tokens.filter(Boolean))) {
        if (learn === 'second-sighting') {
          if (domain)
            p.eval(SIGHTING_ADD, 2, this.key('is', domain.toLowerCase()), this.key('id', domain.toLowerCase()), token, now, ttlMs, MAX_DOMAIN_INFRASTRUCTURE);
          continue;
        }
        if (address) p.eval(BOUNDED_ADD, 1, this.key('ia', address.toLowerCase()), token, now, ttlMs, MAX_ADDRESS_INFRASTRUCTURE);
        if (domain) p.eval(BOUNDED_ADD, 1, this.key('id', domain.toLowerCase()), token, now, ttlMs, MAX_DOMAIN_INFRASTRUCTURE);
      }
    }
    for (const a of new Set(update.addresses.map((x) => x.toLowerCase()))) p.set(this.key('a', a), '1', 'PX', ttlMs);
    for (const d of new Set(update.domains.map((x) => x.toLowerCase()))) p.set(this.key('d', d), '1', 'PX', ttlMs);
    if (update.domains.length) this.listDomains(p, update.domains, now + ttlMs);
    if (!p.length) return;
    const results = await this.run(() => p.exec());
    const failed = results.find(([err]) => err);
    if (failed) throw new ThreadMemoryUnavailable(failed[0]!.message);
  }

  async forgetInfrastructure({ address, domain, tokens }: { address: string; domain: string; tokens: string[] }): Promise<void> {
    if (!tokens.length) return;
    const p = this.redis.pipeline();
    if (address) p.hdel(this.key('ia', address.toLowerCase()), ...tokens);
    if (domain) for (const kind of ['id', 'is']) p.hdel(this.key(kind, domain.toLowerCase()), ...tokens);
    if (!p.length) return;
    const results = await this.run(() => p.exec());
    const failed = results.find(([err]) => err);
    if (failed) throw new ThreadMemoryUnavailable(failed[0]!.message);
  }

  /** The sorted set of known domains, scored by when each is forgotten: expired and surplus members go in the same pipeline. */
  private listDomains(p: ReturnType<RedisClient['pipeline']>, domains: string[], expires: number): void {
    const key = this.prefix + 'domains';
    const unique = [...new Set(domains.map((d) => d.toLowerCase()))];
    for (let i = 0; i < unique.length; i += 1000) p.zadd(key, ...unique.slice(i, i + 1000).flatMap((d) => [expires, d]));
    p.zremrangebyscore(key, '-inf', Date.now());
    p.zremrangebyrank(key, 0, -(MAX_KNOWN_DOMAINS + 1));
    p.eval(EXPIRE_WITH_LAST, 1, key);
  }

  async knownDomains(after = 0): Promise<{ domain: string; expires: number }[]> {
    const p = this.redis.pipeline();
    p.zrangebyscore(this.prefix + 'domains', `(${Math.max(after, Date.now())}`, '+inf', 'WITHSCORES');
    const [[err, flat]] = await this.run(() => p.exec());
    if (err) throw new ThreadMemoryUnavailable(err.message);
    const list = flat as string[];
    const out: { domain: string; expires: number }[] = [];
    for (let i = 0; i + 1 < list.length; i += 2) out.push({ domain: list[i], expires: Number(list[i + 1]) });
    return out;
  }

  /** A pipeline that cannot run (Redis down, offline queue off) or takes too long is "unavailable". */
  private async run(exec: () => Promise<[Error | null, unknown][] | null>): Promise<[Error | null, unknown][]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        exec(),
        new Promise<never>((_r, reject) => {
          timer = setTimeout(() => reject(new ThreadMemoryUnavailable(`redis did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      if (!result) throw new ThreadMemoryUnavailable('redis pipeline returned nothing');
      return result;
    } catch (err) {
      throw err instanceof ThreadMemoryUnavailable ? err : new ThreadMemoryUnavailable((err as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The embedded twin: the same contract in process memory, bounded to maxEntries keys (oldest dropped first). */
export class MemoryThreadMemory implements ThreadMemory {
  private readonly entries = new Map<string, { expires: number; value: string | Map<string, number> }>();
  /** known domains → when each is forgotten, in that order (an update moves a domain to the end) */
  private readonly domains = new Map<string, number>();

  constructor(
    private readonly maxEntries = 200_000,
    private readonly now: () => number = Date.now,
  ) {}

  private get(key: string) {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  private set(key: string, value: string | Map<string, number>, ttlMs: number): void {
    this.entries.delete(key); // re-insert: Map order is the eviction order
    this.entries.set(key, { expires: this.now() + ttlMs, value });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  async lookup(query: MemoryLookup): Promise<MemoryFacts> {
    const threads = ids(query)
      .map((id) => parseRecord(this.get(hashKey('t', id)) as string | undefined))
      .filter((r): r is ThreadRecord => !!r);
    const nameAddresses = new Set<string>();
    for (const name of names(query)) {
      const bound = this.get(hashKey('n', name));
      if (bound instanceof Map) for (const a of bound.keys()) nameAddresses.add(a);
    }
    const fields = (key: string) => {
      const value = this.get(key);
      return value instanceof Map ? [...value.keys()] : [];
    };
    return {
      threads,
      nameAddresses: [...nameAddresses],
      addressKnown: this.get(hashKey('a', query.address.toLowerCase())) !== undefined,
      domainKnown: this.get(hashKey('d', query.domain.toLowerCase())) !== undefined,
      infrastructure: { address: fields(hashKey('ia', query.address.toLowerCase())), domain: fields(hashKey('id', query.domain.toLowerCase())) },
    };
  }

  /** The twin of BOUNDED_ADD: the field moves to the end (most recently seen), the oldest go past `max`. */
  private add(key: string, field: string, max: number, ttlMs: number): void {
    const existing = this.get(key);
    const map = existing instanceof Map ? existing : new Map<string, number>();
    map.delete(field);
    map.set(field, this.now());
    while (map.size > max) map.delete(map.keys().next().value!);
    this.set(key, map, ttlMs);
  }

  async update(update: MemoryUpdate, ttlMs: number): Promise<void> {
    const now = this.now();
    for (const { messageId, record } of update.threads) this.set(hashKey('t', messageId.trim().toLowerCase()), JSON.stringify(record), ttlMs);
    for (const { name, address } of update.bindings) {
      if (name && address) this.add(hashKey('n', name), address.toLowerCase(), MAX_NAME_ADDRESSES, ttlMs);
    }
    for (const { address, domain, tokens, learn } of update.infrastructure) {
      for (const token of new Set(tokens.filter(Boolean))) {
        if (learn === 'second-sighting') {
          if (!domain) continue;
          const sightings = this.get(hashKey('is', domain.toLowerCase()));
          const seen = sightings instanceof Map && sightings.has(token);
          this.add(hashKey('is', domain.toLowerCase()), token, MAX_DOMAIN_INFRASTRUCTURE, ttlMs);
          if (seen) this.add(hashKey('id', domain.toLowerCase()), token, MAX_DOMAIN_INFRASTRUCTURE, ttlMs);
          continue;
        }
        if (address) this.add(hashKey('ia', address.toLowerCase()), token, MAX_ADDRESS_INFRASTRUCTURE, ttlMs);
        if (domain) this.add(hashKey('id', domain.toLowerCase()), token, MAX_DOMAIN_INFRASTRUCTURE, ttlMs);
      }
    }
    for (const a of update.addresses) this.set(hashKey('a', a.toLowerCase()), '1', ttlMs);
    for (const d of update.domains) this.set(hashKey('d', d.toLowerCase()), '1', ttlMs);
    for (const d of update.domains) {
      this.domains.delete(d.toLowerCase());
      this.domains.set(d.toLowerCase(), now + ttlMs);
    }
    for (const [d, expires] of this.domains) {
      if (this.domains.size <= MAX_KNOWN_DOMAINS && expires > now) break;
      this.domains.delete(d);
    }
  }

  async forgetInfrastructure({ address, domain, tokens }: { address: string; domain: string; tokens: string[] }): Promise<void> {
    const keys = [
      ...(address ? [hashKey('ia', address.toLowerCase())] : []),
      ...(domain ? ['id', 'is'].map((kind) => hashKey(kind, domain.toLowerCase())) : []),
    ];
    for (const key of keys) {
      const map = this.get(key);
      if (map instanceof Map) for (const token of tokens) map.delete(token);
    }
  }

  async knownDomains(after = 0): Promise<{ domain: string; expires: number }[]> {
    const floor = Math.max(after, this.now());
    return [...this.domains].filter(([, expires]) => expires > floor).map(([domain, expires]) => ({ domain, expires }));
  }
}

const embedded = new WeakMap<StateBackend, Map<string, ThreadMemory>>();

/** The thread memory of a state backend: one embedded twin per in-memory backend, or Redis under `prefix`. */
export function threadMemoryFor(state: StateBackend, prefix = '{mailmoat:thread}:'): ThreadMemory {
  let byPrefix = embedded.get(state);
  if (!byPrefix) embedded.set(state, (byPrefix = new Map<string, ThreadMemory>()));
  const key = state.kind === 'redis' ? prefix : '';
  let memory = byPrefix.get(key);
  if (!memory) {
    memory = state.kind === 'redis' ? new RedisThreadMemory(state.redis, prefix) : new MemoryThreadMemory();
    byPrefix.set(key, memory);
  }
  return memory;
}
