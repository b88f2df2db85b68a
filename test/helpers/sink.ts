// A real downstream MTA for the tests: smtp-server on loopback that records each transaction exactly
// (raw MAIL/RCPT lines, XFORWARD attributes, the message bytes as unstuffed by smtp-server) and can
// be told to refuse any step.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { applySmtpServerPatches, commandLine, receivedXforward } from '../../src/gateway/smtp-server-patches.js';

export interface ReceivedMessage {
  mailLine: string;
  rcptLines: string[];
  xforward: Map<string, string> | undefined;
  bytes: Buffer;
  sha256: string;
  /** the downstream session was under TLS */
  secure: boolean;
}

export interface SinkBehaviour {
  /** reply for MAIL: return an error `[code, text]` to refuse */
  mail?: (address: string) => [number, string] | undefined;
  rcpt?: (address: string) => [number, string] | undefined;
  /** reply to the final dot */
  dot?: (bytes: Buffer) => [number, string] | undefined;
  xforward?: boolean;
  /** offer DSN (default yes); a Postfix in front then adds ORCPT, which smtp-server refuses for UTF-8 */
  dsn?: boolean;
  /** offer STARTTLS with this key and certificate */
  tls?: { key: Buffer; cert: Buffer };
  /** listen on this port (a restarted sink takes its old one); default: a free one */
  port?: number;
}

export interface Sink {
  port: number;
  messages: ReceivedMessage[];
  /** MAIL lines of every transaction started, relayed or not */
  mails: string[];
  /** commands seen that the test may care about (RSET) */
  resets: number;
  connections: number;
  closedConnections: number;
  close(): Promise<void>;
  /** dies as a crashed MTA would: every connection cut at once, the port closed */
  crash(): Promise<void>;
}

function refusal([code, text]: [number, string]): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

export async function startSink(behaviour: SinkBehaviour = {}): Promise<Sink> {
  applySmtpServerPatches();
  const sink: Sink = {
    port: 0,
    messages: [],
    mails: [],
    resets: 0,
    connections: 0,
    closedConnections: 0,
    close: async () => undefined,
    crash: async () => undefined,
  };
  const sockets = new Set<Socket>();
  const rcptLines = new WeakMap<SMTPServerSession, string[]>();
  const server = new SMTPServer({
    ...(behaviour.tls ?? {}),
    disabledCommands: behaviour.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    authOptional: true,
    disableReverseLookup: true,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: behaviour.dsn === false,
    useXForward: behaviour.xforward ?? true,
    logger: false,
    size: 100 * 1024 * 1024,
    onConnect(_session, cb) {
      sink.connections++;
      cb();
    },
    onClose() {
      sink.closedConnections++;
    },
    onMailFrom(address, session, cb) {
      sink.mails.push(commandLine(session));
      rcptLines.set(session, []);
      const refused = behaviour.mail?.(address.address);
      cb(refused ? refusal(refused) : undefined);
    },
    onRcptTo(address, session, cb) {
      const refused = behaviour.rcpt?.(address.address);
      if (!refused) rcptLines.get(session)!.push(commandLine(session));
      cb(refused ? refusal(refused) : undefined);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const refused = behaviour.dot?.(bytes);
        if (refused) return cb(refusal(refused));
        sink.messages.push({
          mailLine: sink.mails[sink.mails.length - 1],
          rcptLines: rcptLines.get(session) ?? [],
          xforward: receivedXforward(session) ? new Map(receivedXforward(session)) : undefined,
          bytes,
          sha256: sha256(bytes),
          secure: Boolean((session as { secure?: boolean }).secure),
        });
        cb(null, '2.0.0 Ok: queued as SINK' + sink.messages.length);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(behaviour.port ?? 0, '127.0.0.1', () => resolve()));
  sink.port = (server.server.address() as { port: number }).port;
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  sink.crash = () => {
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    return closed;
  };
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (d: Buffer) => {
      if (/^RSET\r?$/im.test(d.toString('latin1'))) sink.resets++;
    });
  });
  return sink;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
