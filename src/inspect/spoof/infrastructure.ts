// The infrastructure a message came through, as the memory learns it per sender and per sending
// domain: the client's network (a /24, or a /48 for IPv6: a sender's mail servers share one, a
// colleague's new laptop on the office network too), the envelope sender's organisation (the sender's
// own domain, or the bounce domain of the mailing service it uses), and the organisations of the DKIM
// signatures that verified. A token says "this is how genuine mail from them arrives".
import net from 'node:net';
import { clientKey } from '../../policy/network.js';
import type { AuthSummary } from './auth.js';
import { orgDomain } from './names.js';

export interface Infrastructure {
  /** 'net:198.51.100.0/24' or 'net:2001:db8:1:0:0:0:0:0/48'; '' when the client address is unknown */
  network: string;
  /** 'env:' + the envelope sender's organisation; '' for the null sender */
  envelope: string;
  /** 'dkim:' + the organisation of each DKIM signature that verified */
  dkim: string[];
  /** whether SPF vouched for the envelope: pass, could not tell (authentication off or DNS failed), or no */
  spf: 'pass' | 'unknown' | 'no';
  /**
   * 'host:' + the organisation of the client's verified hostname (ClientInfo.name), only when the
   * envelope's domain publishes no SPF record: a partner on shared hosting with nothing to
   * authenticate sends from ever other /24s of its provider, whose servers' names say whose they are.
   * Never for a domain with SPF: there the hosting provider is everyone's (a compromised mailbox at
   * the same cloud would match).
   */
  host: string;
}

/** The client's network: IPv4 /24, IPv6 /48 (IPv4-mapped IPv6 counts as IPv4). */
export function networkOf(ip: string): string {
  const plain = ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (net.isIPv4(plain)) return `net:${plain.split('.').slice(0, 3).join('.')}.0/24`;
  if (net.isIPv6(plain)) return `net:${clientKey(plain, 48)}`;
  return '';
}

export const envelopeToken = (org: string) => (org ? `env:${org}` : '');

export function observeInfrastructure(client: { address: string; name?: string }, envOrg: string, auth: AuthSummary | null): Infrastructure {
  const spf = !auth || auth.spf === 'temperror' ? 'unknown' : auth.spf === 'pass' ? 'pass' : 'no';
  return {
    network: networkOf(client.address),
    host: auth?.spf === 'none' && client.name ? `host:${orgDomain(client.name)}` : '',
    envelope: envelopeToken(envOrg),
    dkim: [...new Set((auth?.dkim ?? []).filter((d) => d.result === 'pass' && d.domain).map((d) => `dkim:${orgDomain(d.domain)}`))],
    spf,
  };
}

/** Every token of the message: what the memory learns when the message turns out genuine. */
export function infrastructureTokens(infra: Infrastructure): string[] {
  return [infra.network, infra.host, infra.envelope, ...infra.dkim].filter(Boolean);
}

/**
 * The tokens that vouch for the sender: the network (a TCP peer cannot be forged), the verified
 * hostname's organisation where the domain publishes no SPF (the MTA in front checked it), verified DKIM
 * signatures, and the envelope organisation unless SPF said no (an envelope is what the sender
 * claims; without DNS it is taken at its word rather than quarantining genuine mail).
 */
export function trustedTokens(infra: Infrastructure): string[] {
  return [infra.network, infra.host, infra.spf === 'no' ? '' : infra.envelope, ...infra.dkim].filter(Boolean);
}

/**
 * A sender on shared hosting sends from a pool: each message from another /24 of the provider's
 * range. Once its genuine mail has come from two /24s of one IPv4 /16, that /16 is its pool, and a
 * third /24 there is no news. A /16 is never learned from one message: two customers of one cloud
 * land in one /16 too easily for that.
 */
export function inKnownPool(network: string, known: string[]): boolean {
  const m = /^net:(\d+\.\d+)\.\d+\.0\/24$/.exec(network);
  if (!m) return false;
  const prefix = `net:${m[1]}.`;
  return new Set(known.filter((t) => t.startsWith(prefix) && t.endsWith('/24'))).size >= 2;
}
