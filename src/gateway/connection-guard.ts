// Bounds on what one SMTP client connection may hold, so that slow clients cannot keep every slot
// (slowloris): connections per client address, the time to send one command line, the time and rate
// of the DATA phase, and commands that never lead to a message. smtp-server's own idle timeout
// (timeouts.client) is reset by every byte a client trickles in; these bounds are not. The policy
// is read at every check, so a reload applies to the connections already open.
//
// Time the gateway makes the client wait never counts against the client: a hook waiting on the
// downstream, the verdict after the final dot, a full spool pausing the socket.
//
// Past a bound the client gets 421 and the connection is closed at once (not after smtp-server's
// half-close grace): a transaction in flight is then abandoned by the gateway's onClose, its
// downstream session dropped without ".", nothing relayed or quarantined.
import type net from 'node:net';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Logger } from '../observe/log.js';
import { metrics } from '../observe/metrics.js';
import { clientKey, inNetworks } from '../policy/network.js';
import type { Policy } from '../policy/schema.js';
import { observeConnections } from './smtp-server-patches.js';
import { SmtpError } from './transaction.js';

/** Commands that never make a message (Postfix's junk commands, plus HELO/EHLO, which reset the session). */
const JUNK_COMMANDS = new Set(['NOOP', 'RSET', 'HELP', 'VRFY', 'EXPN', 'ETRN', 'HELO', 'EHLO']);

/** How often the clocks are looked at: a tenth of the shortest bound, within these limits. */
const SWEEP_MIN_MS = 20;
const SWEEP_MAX_MS = 1000;

interface Track {
  /** the address the connection came from (before any XFORWARD) */
  readonly address: string;
  socket: net.Socket;
  onData: (chunk: Buffer) => void;
  /** bytes received on the current socket */
  bytes: number;
  /** when the line being received began; undefined when the last byte received ended a line */
  lineStarted: number | undefined;
  /** time the client has owed us the rest of that line */
  lineOwed: number;
  /** the session's transaction number while its DATA phase is watched */
  dataPhase: number | undefined;
  dataOwed: number;
  dataBytesAtStart: number;
  junk: number;
  /** the session's transaction number the junk count belongs to: a finished message starts it afresh */
  junkTransaction: number;
  /** the command being handled was counted as junk already (its refusal is not counted again) */
  commandCounted: boolean;
  closing: boolean;
}

interface PolicySource {
  readonly policy: Policy;
}

export class ConnectionGuard {
  private readonly tracks = new WeakMap<SMTPConnection, Track>();
  private timer: NodeJS.Timeout | undefined;
  private lastSweep = Date.now();
  private stopped = false;

  constructor(
    private readonly server: SMTPServer,
    private readonly source: PolicySource,
    private readonly log: Logger,
  ) {
    observeConnections(server, {
      command: (connection, line) => this.command(connection, line),
      reply: (connection, code) => this.reply(connection, code),
    });
    this.schedule();
  }

  /**
   * At connect (smtp-server's onConnect, before the greeting): undefined to admit the client, or the
   * 421 for a client address that already holds limits.maxClientsPerIp connections. Addresses in
   * xforwardHosts are not limited: an MTA in front speaks for many clients from one address.
   */
  admit(session: SMTPServerSession): SmtpError | undefined {
    const connection = this.connectionOf(session);
    if (!connection) return undefined;
    this.track(connection, session.remoteAddress);
    const { limits, xforwardHosts } = this.source.policy;
    const max = limits.maxClientsPerIp;
    if (max === null || inNetworks(xforwardHosts, session.remoteAddress)) return undefined;
    const key = clientKey(session.remoteAddress, limits.clientIpv6Prefix);
    let open = 0;
    for (const other of this.server.connections) {
      const track = this.tracks.get(other);
      if (track && !track.closing && clientKey(track.address, limits.clientIpv6Prefix) === key) open++;
    }
    if (open <= max) return undefined;
    this.tracks.get(connection)!.closing = true;
    metrics.connectionLimits.inc({ front: 'smtp', bound: 'per_ip' });
    this.log.warn(
      { event: 'client_refused', front: 'smtp', client: session.remoteAddress, bound: 'maxClientsPerIp', limit: max },
      'too many connections from one client address',
    );
    return new SmtpError(421, `4.7.0 Too many connections from your address, try again later`);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private connectionOf(session: SMTPServerSession): SMTPConnection | undefined {
    for (const connection of this.server.connections) if (connection.session === session) return connection;
    return undefined;
  }

  /** The connection's track, following its socket (STARTTLS replaces it with the TLS socket). */
  private track(connection: SMTPConnection, address = connection.remoteAddress): Track {
    let track = this.tracks.get(connection);
    const socket = connection._socket;
    if (track?.socket === socket) return track;
    if (track) track.socket.off('data', track.onData);
    const fresh: Track = track ?? {
      address,
      socket,
      onData: () => undefined,
      bytes: 0,
      lineStarted: undefined,
      lineOwed: 0,
      dataPhase: undefined,
      dataOwed: 0,
      dataBytesAtStart: 0,
      junk: 0,
      junkTransaction: connection.session.transaction ?? 0,
      commandCounted: false,
      closing: false,
    };
    fresh.socket = socket;
    fresh.bytes = 0;
    fresh.lineStarted = undefined;
    fresh.lineOwed = 0;
    fresh.dataPhase = undefined;
    fresh.onData = (chunk: Buffer) => {
      fresh.bytes += chunk.length;
      const lineEnd = chunk.lastIndexOf(0x0a);
      if (lineEnd === chunk.length - 1) {
        fresh.lineStarted = undefined;
        fresh.lineOwed = 0;
      } else if (lineEnd !== -1 || fresh.lineStarted === undefined) {
        fresh.lineStarted = Date.now();
        fresh.lineOwed = 0;
      }
    };
    // the socket already flows into smtp-server's parser: one more listener changes nothing for it
    socket.on('data', fresh.onData);
    track = fresh;
    this.tracks.set(connection, track);
    return track;
  }

  private schedule(): void {
    if (this.stopped) return;
    const { timeouts } = this.source.policy;
    const shortest = Math.min(...[timeouts.command, timeouts.client, timeouts.data].filter((ms) => ms > 0), SWEEP_MAX_MS * 10);
    const every = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(shortest / 10)));
    this.timer = setTimeout(() => {
      try {
        this.sweep();
      } catch (err) {
        this.log.error({ event: 'connection_guard_error', err: err instanceof Error ? err.message : String(err) }, 'connection guard sweep failed');
      }
      this.schedule();
    }, every);
    this.timer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    const since = this.lastSweep;
    this.lastSweep = now;
    const { timeouts, limits } = this.source.policy;
    for (const connection of this.server.connections) {
      const parser = connection._parser;
      if (!parser || connection._closing || connection._closed || !this.tracks.has(connection)) continue;
      const track = this.track(connection);
      if (track.closing) continue;
      // the client waits for us: a hook has not answered, the verdict is being made, we stopped reading
      const waitingForUs = connection._handlerPending || (!!connection._dataStream && !parser._dataMode) || connection._upgrading || track.socket.isPaused();
      if (parser._dataMode) {
        const phase = connection.session.transaction;
        if (track.dataPhase !== phase) {
          track.dataPhase = phase;
          track.dataOwed = 0;
          track.dataBytesAtStart = track.bytes;
          continue;
        }
        if (!waitingForUs) track.dataOwed += now - since;
        const received = track.bytes - track.dataBytesAtStart;
        const seconds = Math.round(track.dataOwed / 1000);
        if (timeouts.data > 0 && track.dataOwed > timeouts.data) {
          this.close(connection, track, 'data', `4.4.2 Message data not complete after ${seconds}s, closing connection`, { received });
        } else if (limits.minDataRate > 0 && track.dataOwed > timeouts.client + (received / limits.minDataRate) * 1000) {
          this.close(
            connection,
            track,
            'data_rate',
            `4.4.2 Message data too slow (${received} bytes in ${seconds}s, minimum ${limits.minDataRate} bytes/s), closing connection`,
            { received },
          );
        }
        continue;
      }
      track.dataPhase = undefined;
      if (track.lineStarted === undefined || waitingForUs) continue;
      track.lineOwed += now - Math.max(since, track.lineStarted);
      if (timeouts.command > 0 && track.lineOwed > timeouts.command) {
        this.close(connection, track, 'command', `4.4.2 Command line not complete after ${Math.round(track.lineOwed / 1000)}s, closing connection`, {});
      }
    }
  }

  private command(connection: SMTPConnection, line: Buffer): boolean {
    const track = this.tracks.get(connection);
    if (!track || track.closing) return true;
    const verb = line.toString('latin1', 0, 8).split(' ', 1)[0].toUpperCase();
    track.commandCounted = JUNK_COMMANDS.has(verb);
    return !track.commandCounted || this.countJunk(connection, track);
  }

  private reply(connection: SMTPConnection, code: number): void {
    const track = this.tracks.get(connection);
    if (!track || track.closing || code < 400 || code === 421) return;
    if (track.commandCounted) track.commandCounted = false;
    else this.countJunk(connection, track);
  }

  /** One more command that led to no message; false once past the limit (the connection is closed). */
  private countJunk(connection: SMTPConnection, track: Track): boolean {
    const transaction = connection.session.transaction ?? 0;
    if (track.junkTransaction !== transaction) {
      track.junkTransaction = transaction;
      track.junk = 0;
    }
    track.junk++;
    const limit = this.source.policy.limits.maxJunkCommands;
    if (limit === null || track.junk <= limit) return true;
    this.close(connection, track, 'junk', '4.7.0 Too many commands without a message, closing connection', { limit });
    return false;
  }

  /** 421 with the reason, then hang up as soon as it is sent (a dripping client would not). */
  private close(connection: SMTPConnection, track: Track, bound: string, text: string, details: Record<string, unknown>): void {
    track.closing = true;
    metrics.connectionLimits.inc({ front: 'smtp', bound });
    this.log.warn(
      {
        event: bound === 'junk' ? 'client_junk' : 'client_timeout',
        front: 'smtp',
        client: track.address,
        session: connection.id,
        bound,
        inTransaction: !!connection.session.envelope?.mailFrom,
        reply: `421 ${text}`,
        ...details,
      },
      'client past a connection bound: closing',
    );
    const socket = connection._socket;
    connection.send(421, text); // a 421 closes the connection: our side ends once it is written
    if (socket.destroyed) return;
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }
}
