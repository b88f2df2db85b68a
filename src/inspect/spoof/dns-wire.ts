// One DNS question to one name server, on the wire: UDP with EDNS0 (a 1232-byte payload, so DKIM
// keys fit), one retransmission at half the time, TCP when the answer comes back truncated.
// dns-packet (the codec under multicast-dns and bonjour) encodes and decodes; Node's own resolver
// cannot serve here because it hides the TTLs the cache needs (policy `dns.cache`).
// Every failure is an Error with a Node-style `code` (ETIMEOUT, ECONNREFUSED, EBADRESP...).
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import * as packet from 'dns-packet';

export interface NameServer {
  host: string;
  port: number;
}

/** The answer packet as the server sent it, with its response code. */
export type WireResponse = packet.DecodedPacket & { rcode: string };

const EDNS_PAYLOAD = 1232; // the DNS flag day 2020 size: no IP fragmentation
const MAX_TCP_MESSAGE = 65_535;

export function dnsError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

function queryPacket(name: string, type: packet.RecordType): { id: number; bytes: packet.Packet } {
  const id = randomInt(0, 65_536);
  return {
    id,
    bytes: {
      type: 'query',
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ type, name, class: 'IN' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    },
  };
}

/** A response belongs to our query: same id, same question (names compare case-insensitively). */
function matches(response: packet.DecodedPacket, id: number, name: string, type: string): boolean {
  const q = response.questions?.[0];
  return response.id === id && !!q && q.type === type && q.name.toLowerCase().replace(/\.$/, '') === name.toLowerCase().replace(/\.$/, '');
}

/**
 * Ask `server` for `name`/`type`, answering by `deadline` (ms since epoch) at the latest. A
 * connected UDP socket: datagrams from elsewhere never reach us, and a closed port is ECONNREFUSED
 * at once instead of a silent wait.
 */
export function queryServer(server: NameServer, name: string, type: packet.RecordType, deadline: number): Promise<WireResponse> {
  const { id, bytes } = queryPacket(name, type);
  const message = packet.encode(bytes);
  const where = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  return new Promise<WireResponse>((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (err: Error | null, response?: WireResponse) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      socket.close();
      if (err) reject(err);
      else resolve(response!);
    };
    const remaining = () => Math.max(0, deadline - Date.now());
    const send = () =>
      socket.send(
        message,
        (err) => err && finish(dnsError((err as { code?: string }).code ?? 'ECONNREFUSED', `DNS ${type} ${name} to ${where}: ${err.message}`)),
      );
    socket.on('error', (err: Error & { code?: string }) => finish(dnsError(err.code ?? 'ECONNREFUSED', `DNS ${type} ${name} to ${where}: ${err.message}`)));
    socket.on('message', (buf) => {
      let response: packet.DecodedPacket;
      try {
        response = packet.decode(buf);
      } catch {
        return; // garbage is not an answer; the real one may still come
      }
      if (!matches(response, id, name, type)) return;
      if (response.flag_tc) {
        done = true;
        for (const t of timers) clearTimeout(t);
        socket.close();
        queryTcp(server, name, type, deadline).then(resolve, reject);
        return;
      }
      finish(null, response as WireResponse);
    });
    timers.push(setTimeout(() => finish(dnsError('ETIMEOUT', `DNS ${type} ${name}: no answer from ${where} in time`)), remaining()));
    socket.connect(server.port, server.host, () => {
      send();
      // one retransmission halfway: a lost datagram need not cost the whole timeout
      timers.push(setTimeout(() => !done && send(), remaining() / 2));
    });
  });
}

/** The same question over TCP (two-byte length prefix), for answers too large for UDP. */
function queryTcp(server: NameServer, name: string, type: packet.RecordType, deadline: number): Promise<WireResponse> {
  const { id, bytes } = queryPacket(name, type);
  const where = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  return new Promise<WireResponse>((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let buffered = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | null, response?: WireResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(response!);
    };
    const timer = setTimeout(
      () => finish(dnsError('ETIMEOUT', `DNS ${type} ${name}: no TCP answer from ${where} in time`)),
      Math.max(0, deadline - Date.now()),
    );
    socket.on('connect', () => socket.write(packet.streamEncode(bytes)));
    socket.on('error', (err: Error & { code?: string }) =>
      finish(dnsError(err.code ?? 'ECONNREFUSED', `DNS ${type} ${name} over TCP to ${where}: ${err.message}`)),
    );
    socket.on('end', () => finish(dnsError('EBADRESP', `DNS ${type} ${name}: ${where} closed the TCP connection without an answer`)));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_MESSAGE + 2) return finish(dnsError('EBADRESP', `DNS ${type} ${name}: oversized TCP answer from ${where}`));
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      try {
        const response = packet.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        if (!matches(response, id, name, type)) return finish(dnsError('EBADRESP', `DNS ${type} ${name}: ${where} answered another question over TCP`));
        finish(null, response as WireResponse);
      } catch (err) {
        finish(dnsError('EBADRESP', `DNS ${type} ${name}: unreadable TCP answer from ${where}: ${(err as Error).message}`));
      }
    });
  });
}
