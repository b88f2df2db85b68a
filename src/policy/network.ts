// What the policy's `network` section means for an address: inside the internal networks, in an
// internal domain. Relay control, the spoof checks, sender rates and notices all ask through here.
import net from 'node:net';
import { parseCidr, type Policy } from './schema.js';

const blockLists = new WeakMap<string[], net.BlockList>();

/** Is the IP address inside one of the networks? IPv4-mapped IPv6 counts as IPv4. */
export function inNetworks(networks: string[], address: string): boolean {
  let list = blockLists.get(networks);
  if (!list) {
    list = new net.BlockList();
    for (const entry of networks) {
      const cidr = parseCidr(entry);
      if (cidr) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    blockLists.set(networks, list);
  }
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  const family = net.isIP(plain);
  return family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}

/** The domain of an address, lower-case, without a trailing dot ('' when there is none). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase().replace(/\.$/, '');
}

/** One of `network.internalDomains` (`*.example.com` covers the subdomains). */
export function isInternalDomain(policy: Policy, domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return !!d && policy.network.internalDomains.some((x) => (x.startsWith('*.') ? d.endsWith(x.slice(1)) : d === x));
}

export function isInternalAddress(policy: Policy, address: string): boolean {
  return isInternalDomain(policy, domainOf(address));
}
