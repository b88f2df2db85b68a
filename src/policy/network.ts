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
