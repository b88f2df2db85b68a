// DNS for the authentication checks, as the policy's `dns` section says: which name servers
// (default: the system's, from /etc/resolv.conf), how long a query may take in all, and a cache
// that keeps each answer for its own TTL held between `cache.minTtl` and `cache.maxTtl`
// (negative answers for their SOA minimum, RFC 2308). Answers come in the shape of Node's
// `dns.promises.resolve`, which is what mailauth asks of a resolver.
import { getServers } from 'node:dns';
import type { RecordType, SoaData } from 'dns-packet';
import type { DNSResolver } from 'mailauth';
import { parseNameServer, type Policy } from '../../policy/schema.js';
import { dnsError, queryServer, type NameServer, type WireResponse } from './dns-wire.js';

export type DnsPolicy = Policy['dns'];
type Records = string[][] | string[] | { exchange: string; priority: number }[];
/** A resource record as dns-packet decodes it (OPT aside, which never answers a question). */
type Rr = { name: string; type: string; ttl?: number; data: unknown };

/** One answer and how long it may be kept (seconds), or a definite "no such record" error with its TTL. */
export interface DnsAnswer {
  records: Records;
  ttl: number;
}
export type Lookup = (name: string, type: string) => Promise<DnsAnswer>;

/** Failures that say nothing about the name (the next server may answer): never cached. */
export const TEMPORARY_DNS_ERRORS = new Set([
  'ETIMEOUT',
  'ESERVFAIL',
  'ECONNREFUSED',
  'EREFUSED',
  'ECANCELLED',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ETEMPFAIL',
  'EBADRESP',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

const TYPES = new Set<string>(['A', 'AAAA', 'TXT', 'MX', 'PTR', 'CNAME', 'NS', 'SOA', 'SRV', 'CAA', 'TLSA']);

/** The records of `type` for `name` from a response, following the CNAME chain the server included. */
function recordsOf(response: WireResponse, name: string, type: string): DnsAnswer | null {
  const answers = (response.answers ?? []) as Rr[];
  let owner = name.toLowerCase().replace(/\.$/, '');
  let ttl = Infinity;
  for (let hops = 0; hops < 16; hops++) {
    const own = answers.filter((a) => a.name.toLowerCase().replace(/\.$/, '') === owner);
    const found = own.filter((a) => a.type === type);
    if (found.length) {
      ttl = Math.min(ttl, ...found.map((a) => a.ttl ?? 0));
      return { records: convert(found, type), ttl };
    }
    const alias = own.find((a) => a.type === 'CNAME');
    if (!alias || typeof alias.data !== 'string') return null;
    ttl = Math.min(ttl, alias.ttl ?? 0);
    if (type === 'CNAME') return { records: [alias.data], ttl };
    owner = alias.data.toLowerCase().replace(/\.$/, '');
  }
  return null;
}

function convert(found: Rr[], type: string): Records {
  if (type === 'TXT') {
    return found.map((a) => {
      const data = a.data as string | Buffer | (string | Buffer)[];
      return (Array.isArray(data) ? data : [data]).map((chunk) => (Buffer.isBuffer(chunk) ? chunk.toString('utf8') : chunk));
    });
  }
  if (type === 'MX')
    return found.map((a) => ({ exchange: (a.data as { exchange: string }).exchange, priority: (a.data as { preference?: number }).preference ?? 0 }));
  return found.map((a) => (typeof a.data === 'string' ? a.data : JSON.stringify(a.data)));
}

/** RFC 2308: a negative answer lives min(SOA TTL, SOA minimum); without an SOA, as short as allowed. */
function negativeTtl(response: WireResponse): number {
  const soa = ((response.authorities ?? []) as Rr[]).find((a) => a.type === 'SOA');
  if (!soa) return 0;
  return Math.min(soa.ttl ?? 0, (soa.data as SoaData).minimum ?? 0);
}

/**
 * Ask the servers in turn until one gives a definite answer (records, NXDOMAIN, no data), all
 * within `timeoutMs`. A timeout, a refusal, SERVFAIL or a closed port moves on to the next server;
 * each server gets an equal share of the time that is left. A server that did not answer (after
 * one retransmission) is passed over for the next `timeoutMs`: with DNS unreachable, the next
 * lookups of the same message fail at once instead of each waiting the whole timeout again.
 */
export function serversLookup(servers: NameServer[], timeoutMs: number): Lookup {
  if (!servers.length) throw new Error('no DNS servers');
  const downUntil = new Map<NameServer, number>();
  return async (name, type) => {
    if (!TYPES.has(type)) throw dnsError('ENOTIMP', `DNS type ${type} is not supported`);
    const deadline = Date.now() + timeoutMs;
    const up = servers.filter((s) => (downUntil.get(s) ?? 0) <= Date.now());
    let last: Error = dnsError('ETIMEOUT', `DNS ${type} ${name}: no server answered in the last ${timeoutMs} ms`);
    for (let i = 0; i < up.length && Date.now() < deadline; i++) {
      const share = Date.now() + (deadline - Date.now()) / (up.length - i);
      let response: WireResponse;
      try {
        response = await queryServer(up[i], name, type as RecordType, share);
      } catch (err) {
        last = err as Error;
        downUntil.set(up[i], Date.now() + timeoutMs);
        continue;
      }
      downUntil.delete(up[i]);
      if (response.rcode === 'NXDOMAIN') throw Object.assign(dnsError('ENOTFOUND', `DNS ${type} ${name}: no such name`), { ttl: negativeTtl(response) });
      if (response.rcode !== 'NOERROR') {
        last = dnsError(response.rcode === 'REFUSED' ? 'EREFUSED' : 'ESERVFAIL', `DNS ${type} ${name}: ${response.rcode}`);
        continue;
      }
      const answer = recordsOf(response, name, type);
      if (!answer) throw Object.assign(dnsError('ENODATA', `DNS ${type} ${name}: no ${type} record`), { ttl: negativeTtl(response) });
      return answer;
    }
    throw last;
  };
}

export interface CacheBounds {
  /** entries kept (least recently used dropped first); 0: no cache */
  size: number;
  /** ms */
  minTtl: number;
  maxTtl: number;
}

/**
 * A resolver over a lookup: one deadline per query (a lookup that hangs is ETIMEOUT, which
 * mailauth reports as temperror), concurrent identical queries share one lookup, and definite
 * answers are kept for their TTL within the bounds. Temporary failures are never kept.
 */
export function cachedResolver(lookup: Lookup, timeoutMs: number, bounds: CacheBounds): DNSResolver & { size(): number } {
  const cache = new Map<string, { expires: number; answer: Promise<DnsAnswer> }>();
  const clamp = (seconds: number) => Math.min(bounds.maxTtl, Math.max(bounds.minTtl, seconds * 1000));
  const resolver = (name: string, type: string): Promise<Records> => {
    const key = `${type}:${name.toLowerCase().replace(/\.$/, '')}`;
    const hit = cache.get(key);
    if (hit && hit.expires > Date.now()) {
      cache.delete(key); // re-insert: Map order is the eviction order, most recently used last
      cache.set(key, hit);
      return hit.answer.then((a) => a.records);
    }
    let timer: NodeJS.Timeout | undefined;
    const answer = Promise.race([
      lookup(name, type),
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(dnsError('ETIMEOUT', `DNS ${type} ${name} timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (bounds.size > 0) {
      const entry = { expires: Date.now() + timeoutMs, answer }; // in flight: shared, not yet kept
      cache.delete(key);
      cache.set(key, entry);
      while (cache.size > bounds.size) cache.delete(cache.keys().next().value!);
      answer.then(
        (a) => {
          if (cache.get(key) === entry) entry.expires = Date.now() + clamp(a.ttl);
        },
        (err: { code?: string; ttl?: number }) => {
          if (cache.get(key) !== entry) return;
          if (err?.code === 'ENOTFOUND' || err?.code === 'ENODATA') entry.expires = Date.now() + clamp(err.ttl ?? 0);
          else cache.delete(key);
        },
      );
    }
    return answer.then((a) => a.records);
  };
  return Object.assign(resolver as DNSResolver, { size: () => cache.size });
}

/** The servers of the policy, or the system's (Node reads /etc/resolv.conf), or the local host's. */
export function nameServers(policy: DnsPolicy): NameServer[] {
  const given = policy.servers.length ? policy.servers : getServers();
  const parsed = given.map(parseNameServer).filter((s): s is NameServer => s !== null);
  return parsed.length ? parsed : [{ host: '127.0.0.1', port: 53 }];
}

let shared: { key: string; resolver: DNSResolver } | undefined;

/** The process-wide resolver for the policy's `dns` section; a reload that changes it starts a new one (and cache). */
export function policyResolver(policy: DnsPolicy): DNSResolver {
  const key = JSON.stringify(policy);
  if (shared?.key !== key) {
    shared = { key, resolver: cachedResolver(serversLookup(nameServers(policy), policy.timeout), policy.timeout, policy.cache) };
  }
  return shared.resolver;
}
