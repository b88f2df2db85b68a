// What the policy's `network` section means for an address: inside the internal networks, in an
// internal domain. Relay control, the spoof checks, sender rates and notices all ask through here.
import net from 'node:net';
import { parseCidr, type Policy } from './schema.js';

interface CompiledNetworks {
  list: net.BlockList;
  /** answers by address: BlockList.check builds a SocketAddress per call, and the same few client
   *  addresses (the MTA in front, the internal relays) ask on every connection and recipient */
  answers: Map<string, boolean>;
}

const compiled = new WeakMap<string[], CompiledNetworks>();
const MAX_REMEMBERED_ANSWERS = 4096;

/** Is the IP address inside one of the networks? IPv4-mapped IPv6 counts as IPv4. */
export function inNetworks(networks: string[], address: string): boolean {
  let entry = compiled.get(networks);
  if (!entry) {
    const list = new net.BlockList();
    for (const text of networks) {
      const cidr = parseCidr(text);
      if (cidr) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    entry = { list, answers: new Map() };
    compiled.set(networks, entry);
  }
  const known = entry.answers.get(address);
  if (known !== undefined) return known;
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  const family = net.isIP(plain);
  const inside = family !== 0 && entry.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  // bounded: a scan from many addresses starts the memo afresh rather than growing it
  if (entry.answers.size >= MAX_REMEMBERED_ANSWERS) entry.answers.clear();
  entry.answers.set(address, inside);
  return inside;
}

/** The domain of an address, lower-case, without a trailing dot ('' when there is none). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1
    ? ''
    : address
        .slice(at + 1)
        .toLowerCase()
        .replace(/\.$/, '');
}

/** One of `network.internalDomains` (`*.example.com` covers the subdomains). */
export function isInternalDomain(policy: Policy, domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return !!d && policy.network.internalDomains.some((x) => (x.startsWith('*.') ? d.endsWith(x.slice(1)) : d === x));
}

export function isInternalAddress(policy: Policy, address: string): boolean {
  return isInternalDomain(policy, domainOf(address));
}

/**
 * What counts as one client for per-address connection limits: an IPv4 address as it is, an IPv6
 * address by its network of `ipv6Prefix` bits (one end site holds a whole /64 or more, so counting
 * single IPv6 addresses would limit nothing). IPv4-mapped IPv6 counts as IPv4.
 */
export function clientKey(address: string, ipv6Prefix: number): string {
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (!net.isIPv6(plain)) return plain;
  const groups = ipv6Groups(plain);
  const masked = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, ipv6Prefix - 16 * i));
    return group & ((0xffff << (16 - bits)) & 0xffff);
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${ipv6Prefix}`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing IPv4 part converted). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const first = head ? head.split(':') : [];
  const last = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - first.length - last.length).fill('0');
  return [...first, ...zeros, ...last].map((group) => parseInt(group, 16));
}
