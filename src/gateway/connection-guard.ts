// Bounds on what one SMTP client connection may hold, so that slow clients cannot keep every slot
// (slowloris): connections per client address, the time to send one command line, the time and rate
// of the DATA phase, and commands that never lead to a message. smtp-server's own idle timeout
// (timeouts.client) is reset by every byte a client trickles in; these bounds are not. The policy
// is read at every check, so a reload applies to the connections already open.
//
// Time the gateway makes the client wait never counts against the client: a hook waiting on the
// downstream, the verdict after the final dot, a full spool pausing the socket.
//
// When every maxClients slot is taken, a new client takes the slot of a connection that has stalled
// (a partial command line, silence, DATA behind minDataRate) past timeouts.stalledWhenFull, from a
// client address that holds more (open connections, and connections cut by a bound lately) than the
// new client's: otherwise attackers from many addresses that reconnect at once keep every slot, each
// turned over only at the bounds above, and always to them.
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

/** How long a connection cut by a bound counts against its client address when slots are scarce. */
const CUT_MEMORY_MS = 10 * 60_000;
const MAX_CUT_RECORDS = 10_000;

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
  /** when the last byte arrived (or the connection was admitted) */
  lastByteAt: number;
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
  /** client address → connections of it cut by a bound lately */
  private readonly cuts = new Map<string, { count: number; until: number }>();
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
      full: (newcomer) => this.makeRoom(newcomer),
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
      lastByteAt: Date.now(),
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
      fresh.lastByteAt = Date.now();
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
      const waitingForUs = this.waitingForUs(connection, track);
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

  /** The client waits for us: a hook has not answered, the verdict is being made, we stopped reading. */
  private waitingForUs(connection: SMTPConnection, track: Track): boolean {
    const parser = connection._parser;
    return connection._handlerPending || (!!connection._dataStream && !!parser && !parser._dataMode) || connection._upgrading || track.socket.isPaused();
  }

  /**
   * How long the connection has kept us waiting for its part: its partial command line, its silence
   * between commands, or how far its DATA is behind minDataRate. 0 while it waits for us.
   */
  private stalled(connection: SMTPConnection, track: Track, now: number): number {
    const parser = connection._parser;
    if (!parser || track.closing || this.waitingForUs(connection, track)) return 0;
    if (parser._dataMode) {
      const rate = this.source.policy.limits.minDataRate;
      if (track.dataPhase !== connection.session.transaction || rate <= 0) return 0;
      return Math.max(0, track.dataOwed - ((track.bytes - track.dataBytesAtStart) / rate) * 1000);
    }
    if (track.lineStarted !== undefined) return track.lineOwed + (now - Math.max(this.lastSweep, track.lineStarted));
    return now - track.lastByteAt;
  }

  /**
   * Every slot is taken: close a connection stalled past timeouts.stalledWhenFull, if its client
   * address would still hold more than the newcomer's after the swap. An address holds its open
   * connections plus those cut by a bound in the last few minutes. So slots go to addresses that
   * hold few and behave, and attackers, from however many addresses, cannot take them from each
   * other in turn (each reconnect would otherwise take the slot an honest client needs).
   */
  private makeRoom(newcomer: SMTPConnection): boolean {
    const { timeouts, xforwardHosts, limits } = this.source.policy;
    if (timeouts.stalledWhenFull <= 0) return false;
    const now = Date.now();
    const held = new Map<string, number>();
    const open: { connection: SMTPConnection; track: Track; key: string }[] = [];
    for (const connection of this.server.connections) {
      const track = this.tracks.get(connection);
      if (connection === newcomer || !track || track.closing) continue;
      const key = clientKey(track.address, limits.clientIpv6Prefix);
      held.set(key, (held.get(key) ?? 0) + 1);
      open.push({ connection, track, key });
    }
    const holds = (key: string) => (held.get(key) ?? 0) + this.recentCuts(key, now);
    // an MTA in front speaks for many clients: it counts as holding nothing
    const own = inNetworks(xforwardHosts, newcomer.remoteAddress) ? 0 : holds(clientKey(newcomer.remoteAddress, limits.clientIpv6Prefix));
    let worst: { connection: SMTPConnection; track: Track; stalled: number; holds: number } | undefined;
    for (const { connection, track, key } of open) {
      const count = holds(key);
      // an MTA in front waits on its own clients: its connections are never taken
      if (own + 1 >= count || inNetworks(xforwardHosts, track.address)) continue;
      const stalled = this.stalled(connection, track, now);
      if (stalled <= timeouts.stalledWhenFull) continue;
      if (!worst || count > worst.holds || (count === worst.holds && stalled > worst.stalled)) worst = { connection, track, stalled, holds: count };
    }
    if (!worst) return false;
    const seconds = Math.round(worst.stalled / 1000);
    this.close(worst.connection, worst.track, 'stalled', `4.4.2 Connection stalled for ${seconds}s while all slots are taken, closing connection`, {
      stalled_ms: worst.stalled,
      newcomer: newcomer.remoteAddress,
    });
    const { maxClients } = this.server.options;
    return !maxClients || this.server.connections.size <= maxClients;
  }

  /** Connections of this client cut by a bound within CUT_MEMORY_MS. */
  private recentCuts(key: string, now: number): number {
    const record = this.cuts.get(key);
    if (!record) return 0;
    if (record.until > now) return record.count;
    this.cuts.delete(key);
    return 0;
  }

  private rememberCut(address: string): void {
    const key = clientKey(address, this.source.policy.limits.clientIpv6Prefix);
    const now = Date.now();
    // bounded: a flood from more addresses than this starts the record afresh rather than growing it
    if (this.cuts.size >= MAX_CUT_RECORDS && !this.cuts.has(key)) this.cuts.clear();
    this.cuts.set(key, { count: this.recentCuts(key, now) + 1, until: now + CUT_MEMORY_MS });
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
    this.rememberCut(track.address);
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
