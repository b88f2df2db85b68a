// A real name server for the tests, on loopback: UDP and TCP on one port, serving a zone of test
// records (TXT for SPF, DKIM, DMARC; A, MX, CNAME) with dns-packet over node:dgram and node:net.
// It records every question, answers NXDOMAIN and NODATA with an SOA (RFC 2308 negative TTL), sets
// TC when an answer is larger than the UDP size it was asked for (or than `udpLimit`), and can be
// told to stay silent or to answer SERVFAIL.
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';
import type { Zone } from '../fixtures/mail/zone.js';

export interface DnsQuestion {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface DnsServerOptions {
  /** TTL of every record, seconds (default 300) */
  ttl?: number;
  /** the SOA minimum given with negative answers, seconds (default 60) */
  negativeTtl?: number;
  /** UDP answers larger than this are truncated (TC), whatever the client offered */
  udpLimit?: number;
  /** names (lower case) that get no answer at all; `true`: nothing is ever answered */
  silent?: Set<string> | true;
  /** names that get SERVFAIL */
  servfail?: Set<string>;
}

export interface TestDnsServer {
  port: number;
  /** `127.0.0.1:PORT`, as dns.servers takes it */
  address: string;
  questions: DnsQuestion[];
  zone: Zone;
  close(): Promise<void>;
}

/** A DNS character-string holds at most 255 bytes: long TXT values (DKIM keys) are split. */
function txtChunks(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  return chunks.length ? chunks : [Buffer.alloc(0)];
}

function answer(zone: Zone, opts: DnsServerOptions, query: packet.DecodedPacket): packet.Packet | null {
  const q = query.questions?.[0];
  const base = { type: 'response' as const, id: query.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: query.questions };
  if (!q) return { ...base, flags: (base.flags ?? 0) | 1 }; // FORMERR
  const name = q.name.toLowerCase().replace(/\.$/, '');
  if (opts.silent === true || opts.silent?.has(name)) return null;
  if (opts.servfail?.has(name)) return { ...base, flags: (base.flags ?? 0) | 2 };
  const ttl = opts.ttl ?? 300;
  const answers: packet.Answer[] = [];
  let owner = name;
  for (let hops = 0; hops < 8; hops++) {
    const records = zone[owner];
    const alias = records?.CNAME?.[0];
    if (alias && q.type !== 'CNAME') {
      answers.push({ type: 'CNAME', name: owner, ttl, data: alias });
      owner = alias.toLowerCase();
      continue;
    }
    for (const value of records?.[q.type as keyof Zone[string]] ?? []) {
      if (q.type === 'TXT') answers.push({ type: 'TXT', name: owner, ttl, data: txtChunks(value) });
      else if (q.type === 'MX') {
        const [preference, exchange] = value.split(/\s+/);
        answers.push({ type: 'MX', name: owner, ttl, data: { preference: Number(preference), exchange } });
      } else answers.push({ type: q.type as 'A', name: owner, ttl, data: value });
    }
    break;
  }
  const exists = !!zone[name] || Object.keys(zone).some((n) => n.endsWith(`.${name}`));
  const soa: packet.Answer = {
    type: 'SOA',
    name: name.split('.').slice(-2).join('.'),
    ttl: opts.negativeTtl ?? 60,
    data: { mname: 'ns.test', rname: 'hostmaster.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: opts.negativeTtl ?? 60 },
  };
  if (answers.length) return { ...base, answers };
  return { ...base, flags: (base.flags ?? 0) | (exists ? 0 : 3), authorities: [soa] }; // NODATA or NXDOMAIN
}

export async function startDnsServer(zone: Zone, opts: DnsServerOptions = {}): Promise<TestDnsServer> {
  const questions: DnsQuestion[] = [];
  const udp = dgram.createSocket('udp4');
  const tcp = net.createServer();
  const sockets = new Set<net.Socket>();
  const note = (query: packet.DecodedPacket, transport: 'udp' | 'tcp') => {
    const q = query.questions?.[0];
    if (q) questions.push({ name: q.name.toLowerCase(), type: q.type, transport });
  };
  udp.on('message', (buf, peer) => {
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(buf);
    } catch {
      return;
    }
    note(query, 'udp');
    const response = answer(zone, opts, query);
    if (!response) return;
    const offered = (query.additionals ?? []).find((a): a is packet.OptAnswer => a.type === 'OPT')?.udpPayloadSize ?? 512;
    const limit = Math.min(offered, opts.udpLimit ?? Infinity);
    let bytes = packet.encode(response);
    if (bytes.length > limit) {
      bytes = packet.encode({ ...response, flags: (response.flags ?? 0) | packet.TRUNCATED_RESPONSE, answers: [], authorities: [] });
    }
    udp.send(bytes, peer.port, peer.address);
  });
  tcp.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const query = packet.decode(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        note(query, 'tcp');
        const response = answer(zone, opts, query);
        if (response) socket.write(packet.streamEncode(response));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = udp.address();
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    questions,
    zone,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}

/** A loopback UDP port with nothing behind it (the kernel answers "port unreachable"). */
export async function closedDnsPort(): Promise<string> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return `127.0.0.1:${port}`;
}
