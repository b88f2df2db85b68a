// SPF, DKIM, DMARC and ARC with mailauth, on the real envelope, client address and HELO. DNS goes
// through the policy's resolver (./dns.ts: its servers, a per-query timeout, a TTL cache) or an
// injected one (tests); a DNS failure or timeout is a temperror, never a hang.
import type { Readable } from 'node:stream';
import { authenticate, type DNSResolver } from 'mailauth';
import { cachedResolver, TEMPORARY_DNS_ERRORS } from './dns.js';

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

/**
 * An injected resolver (tests, benchmarks: answers without TTLs) with a per-query deadline and a
 * cache that keeps every definite answer for `ttlMs`. The policy's resolver is `policyResolver`
 * in ./dns.ts (real TTLs within the policy's bounds).
 */
export function cachingResolver(inner: DNSResolver, timeoutMs = 2000, ttlMs = 300_000, max = 10_000): DNSResolver {
  const lookup = async (name: string, type: string) => ({ records: (await inner(name, type)) as string[][], ttl: ttlMs / 1000 });
  return cachedResolver(lookup, timeoutMs, { size: max, minTtl: ttlMs, maxTtl: ttlMs });
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
      if (TEMPORARY_DNS_ERRORS.has((err as { code?: string }).code ?? '')) temperror = true;
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
