// A small authoritative DNS server on loopback (UDP and TCP, dns-packet for the wire format) that
// serves a fixed zone of test records: what a gateway pointed at "its" resolver sees, with real
// packets, real sockets and real timeouts. Unknown names are NXDOMAIN, known names without the asked
// type NODATA; a CNAME is followed inside the zone. TXT strings longer than 255 bytes are split into
// character-strings as a real zone file would (long DKIM keys).
import dgram from 'node:dgram';
import net from 'node:net';
import { promises as dns } from 'node:dns';
import * as dnsPacket from 'dns-packet';
import type { DNSResolver } from '../../src/inspect/spoof/auth.js';

export type DnsRecord =
  | { name: string; type: 'TXT'; data: string }
  | { name: string; type: 'A' | 'AAAA' | 'CNAME' | 'PTR' | 'NS'; data: string }
  | { name: string; type: 'MX'; data: { preference: number; exchange: string } };

export interface DnsServer {
  /** host:port, as a resolver's server list takes it */
  address: string;
  port: number;
  /** every question asked ("TXT example.com"), in order */
  queries: string[];
  close(): Promise<void>;
}

const NXDOMAIN = 3;
const SERVFAIL = 2;

const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');

/** Splits a TXT string into 255-byte character-strings (RFC 1035 §3.3.14). */
function txtChunks(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  return chunks.length ? chunks : [Buffer.alloc(0)];
}

export async function startDnsServer(records: DnsRecord[]): Promise<DnsServer> {
  const byName = new Map<string, DnsRecord[]>();
  for (const r of records) {
    const key = norm(r.name);
    byName.set(key, [...(byName.get(key) ?? []), r]);
  }
  // names that only exist as parents ("_domainkey.example.com") answer NODATA, not NXDOMAIN
  const parents = new Set<string>();
  for (const name of byName.keys()) {
    const labels = name.split('.');
    for (let i = 1; i < labels.length; i++) parents.add(labels.slice(i).join('.'));
  }
  const queries: string[] = [];

  function answer(query: dnsPacket.Packet): Buffer {
    const question = query.questions?.[0];
    let rcode = 0;
    const answers: dnsPacket.Answer[] = [];
    if (!question) rcode = SERVFAIL;
    else {
      queries.push(`${question.type} ${norm(question.name)}`);
      let name = norm(question.name);
      for (let hops = 0; hops < 8; hops++) {
        const here = byName.get(name);
        if (!here) {
          if (!answers.length && !parents.has(name)) rcode = NXDOMAIN;
          break;
        }
        const matching = here.filter((r) => r.type === question.type);
        const cname = here.find((r) => r.type === 'CNAME');
        if (!matching.length && cname && question.type !== 'CNAME') {
          answers.push({ type: 'CNAME', name, ttl: 300, data: norm(cname.data as string) });
          name = norm(cname.data as string);
          continue;
        }
        for (const r of matching) {
          if (r.type === 'TXT') answers.push({ type: 'TXT', name, ttl: 300, data: txtChunks(r.data) });
          else if (r.type === 'MX') answers.push({ type: 'MX', name, ttl: 300, data: r.data });
          else answers.push({ type: r.type, name, ttl: 300, data: r.data });
        }
        break;
      }
    }
    return dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: query.questions ?? [],
      answers,
    });
  }

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    let reply: Buffer;
    try {
      reply = answer(dnsPacket.decode(msg));
    } catch {
      return; // not a DNS query: no answer, as a real server would drop it
    }
    if (reply.length > 512 && !(dnsPacket.decode(msg).additionals ?? []).some((a) => a.type === 'OPT')) {
      // too big for plain UDP: the truncated header sends the client to TCP
      const truncated = dnsPacket.decode(reply);
      reply = dnsPacket.encode({ ...truncated, flags: (truncated.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
    }
    udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
  const port = udp.address().port;

  const tcp = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        const length = buffer.readUInt16BE(0);
        const msg = buffer.subarray(2, 2 + length);
        buffer = buffer.subarray(2 + length);
        try {
          socket.write(dnsPacket.streamEncode(dnsPacket.decode(answer(dnsPacket.decode(msg)))));
        } catch {
          socket.destroy();
        }
      }
    });
  });
  // the same port number for TCP, so one host:port serves both
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    close: async () => {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}

/**
 * A resolver that asks these servers (host:port) over the network, as node's own resolver (c-ares)
 * does for the system's: what a gateway configured with DNS servers uses. One try per query: a test
 * server answers at once or not at all.
 */
export function networkResolver(servers: string[], timeoutMs = 2000): DNSResolver {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers(servers);
  return (name, type) => resolver.resolve(name, type) as Promise<string[][] | string[]>;
}
