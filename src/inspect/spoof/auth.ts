// SPF, DKIM, DMARC and ARC with mailauth, on the real envelope, client address and HELO. DNS goes
// through an injectable resolver (tests use a zone-file-like one, offline) wrapped in a per-query
// timeout and a small TTL cache; a DNS failure or timeout is a temperror, never a hang.
import { promises as dns } from 'node:dns';
import type { Readable } from 'node:stream';
import { authenticate, type DNSResolver } from 'mailauth';

export type { DNSResolver };

export interface AuthSummary {
  spf: string;
  dkim: { domain: string; result: string; aligned: boolean }[];
  dmarc: { result: string; policy: string; domain: string } | null;
  arc: string;
  /** any lookup failed temporarily (timeout, SERVFAIL) */
  temperror: boolean;
  /** the Authentication-Results header mailauth composed (one line, no trailing CRLF) */
  header: string;
}

const TEMPORARY = new Set(['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED', 'ECANCELLED', 'ETIMEDOUT', 'EAI_AGAIN', 'ETEMPFAIL']);

/**
 * A resolver with a per-query deadline and a cache (positive answers and NXDOMAIN/NODATA, for
 * `ttlMs`). A timeout rejects with code ETIMEOUT, which mailauth reports as temperror.
 */
export function cachingResolver(inner: DNSResolver = dns.resolve, timeoutMs = 2000, ttlMs = 300_000, max = 10_000): DNSResolver {
  const cache = new Map<string, { expires: number; answer: Promise<string[][] | string[]> }>();
  return (name, type) => {
    const key = `${type}:${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.answer;
    let timer: NodeJS.Timeout | undefined;
    const answer = Promise.race([
      inner(name, type),
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`DNS ${type} ${name} timed out after ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    cache.set(key, { expires: Date.now() + ttlMs, answer });
    answer.catch((err: { code?: string }) => {
      if (TEMPORARY.has(err?.code ?? '') || !err?.code) cache.delete(key); // only definite answers are cached
    });
    if (cache.size > max) cache.delete(cache.keys().next().value!);
    return answer;
  };
}

let defaultResolver: DNSResolver | undefined;
let defaultTimeout = -1;
/** The process-wide system resolver with the policy's timeout and a cache. */
export function systemResolver(timeoutMs: number): DNSResolver {
  if (!defaultResolver || defaultTimeout !== timeoutMs) {
    defaultResolver = cachingResolver(undefined, timeoutMs);
    defaultTimeout = timeoutMs;
  }
  return defaultResolver;
}

export async function authenticateMessage(
  input: Readable | Buffer,
  opts: { sender: string; ip: string; helo: string; mta: string; resolver: DNSResolver; timeoutMs: number },
): Promise<AuthSummary> {
  let temperror = false;
  const resolver: DNSResolver = async (name, type) => {
    try {
      return await opts.resolver(name, type);
    } catch (err) {
      if (TEMPORARY.has((err as { code?: string }).code ?? '')) temperror = true;
      throw err;
    }
  };
  const ip = opts.ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  let timer: NodeJS.Timeout | undefined;
  // an overall bound as well: many lookups in a row, each under the per-query timeout, must not add up
  const result = await Promise.race([
    authenticate(input, { sender: opts.sender, ip, helo: opts.helo, mta: opts.mta, resolver, disableBimi: true }),
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('authentication timed out'), { code: 'ETIMEOUT' })), opts.timeoutMs * 3);
    }),
  ]).finally(() => clearTimeout(timer));
  const spf = result.spf ? result.spf.status.result : 'none';
  const dkim = (result.dkim?.results ?? []).map((r) => ({
    domain: (r as { signingDomain?: string }).signingDomain ?? '',
    result: r.status.result,
    aligned: !!(r.status as { aligned?: unknown }).aligned,
  }));
  const dmarc = result.dmarc
    ? { result: result.dmarc.status.result, policy: (result.dmarc as { policy?: string }).policy ?? 'none', domain: result.dmarc.domain }
    : null;
  const arc = result.arc ? result.arc.status.result : 'none';
  if ([spf, arc, dmarc?.result, ...dkim.map((d) => d.result)].some((r) => r === 'temperror' || r === 'temperr')) temperror = true;
  const header =
    result.headers
      .split(/\r?\n(?![ \t])/)
      .find((h) => /^Authentication-Results:/i.test(h))
      ?.replace(/\r?\n[ \t]+/g, ' ') ?? '';
  return { spf, dkim, dmarc, arc, temperror, header };
}
