// Bounds on milter connections: how many, how many from one peer address, how long a packet that has
// begun may take to complete, and how long a new connection may take to start its SMTP session
// (OPTNEG, then CONNECT: Postfix sends both at once). Only the MTA should connect here, so the
// defaults are generous; they stop a peer that is not a working MTA from holding connections.
//
// There is deliberately no idle bound inside an SMTP session: the MTA sends nothing for NOOP or
// while its client sends DATA, it bounds its client itself, and a milter connection closed under it
// gets milter_default_action (with `accept`, that session's mail would pass unfiltered). For the
// same reason a connection past a limit is not simply closed: it is answered 4xx at CONNECT (see
// MilterSession's refusal), so the MTA tempfails that SMTP session.
import type net from 'node:net';
import type { Logger } from '../observe/log.js';
import { metrics } from '../observe/metrics.js';
import { clientKey } from '../policy/network.js';
import type { Policy } from '../policy/schema.js';
import { replyText } from './codec.js';

/** A refused connection that never gets as far as CONNECT is closed after this. */
const REFUSED_LINGER_MS = 10_000;

interface PolicySource {
  readonly policy: Policy;
}

export class MilterConnectionGuard {
  /** admitted connections and the peer they count against ('' for a UNIX socket: not per address) */
  private readonly admitted = new Map<net.Socket, string>();

  constructor(
    private readonly source: PolicySource,
    private readonly log: Logger,
  ) {}

  /**
   * A new connection: undefined to admit it, or the REPLYCODE text its CONNECT gets because the
   * server is at milter.maxConnections, or the peer at milter.maxConnectionsPerAddress.
   */
  admit(socket: net.Socket): string | undefined {
    const { milter } = this.source.policy;
    const peer = socket.remoteAddress ? clientKey(socket.remoteAddress, 128) : '';
    let bound: 'maxConnections' | 'maxConnectionsPerAddress' | undefined;
    if (this.admitted.size >= milter.maxConnections) bound = 'maxConnections';
    else if (peer && milter.maxConnectionsPerAddress !== null) {
      let fromPeer = 0;
      for (const other of this.admitted.values()) if (other === peer) fromPeer++;
      if (fromPeer >= milter.maxConnectionsPerAddress) bound = 'maxConnectionsPerAddress';
    }
    if (!bound) {
      this.admitted.set(socket, peer);
      socket.once('close', () => this.admitted.delete(socket));
      return undefined;
    }
    metrics.connectionLimits.inc({ front: 'milter', bound: bound === 'maxConnections' ? 'connections' : 'per_address' });
    this.log.warn(
      { event: 'milter_refused', front: 'milter', peer: socket.remoteAddress, bound, limit: milter[bound], open: this.admitted.size },
      'milter connection past a limit: its SMTP session is tempfailed at CONNECT',
    );
    return replyText(451, '4.3.2', 'Mail filter busy, try again later');
  }

  /** The clocks of one connection: the packet in progress, and the start of its SMTP session. */
  watch(socket: net.Socket, opts: { refused: boolean; started: () => boolean; expire: (bound: 'packet' | 'connect') => void }): ConnectionClock {
    return new ConnectionClock(socket, this.source, this.log, opts);
  }
}

export class ConnectionClock {
  private packetTimer: NodeJS.Timeout | undefined;
  private readonly connectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly source: PolicySource,
    private readonly log: Logger,
    private readonly opts: { refused: boolean; started: () => boolean; expire: (bound: 'packet' | 'connect') => void },
  ) {
    const { connectTimeout } = source.policy.milter;
    const limit = opts.refused ? Math.min(connectTimeout || REFUSED_LINGER_MS, REFUSED_LINGER_MS) : connectTimeout;
    if (limit > 0) {
      this.connectTimer = setTimeout(() => {
        if (!opts.started()) this.expire('connect', limit);
      }, limit);
      this.connectTimer.unref();
    }
    socket.once('close', () => this.stop());
  }

  /** After each read: bytes of an unfinished packet buffered, and whether the read completed a packet
   *  (then the unfinished one has just begun). */
  received(pending: number, completedAny: boolean): void {
    if (pending === 0) {
      clearTimeout(this.packetTimer);
      this.packetTimer = undefined;
    } else if (completedAny || !this.packetTimer) {
      this.armPacket();
    }
  }

  private armPacket(): void {
    clearTimeout(this.packetTimer);
    const limit = this.source.policy.milter.packetTimeout;
    if (limit <= 0) return;
    this.packetTimer = setTimeout(() => {
      // we stopped reading (a slow verdict with packets queued): the rest is not late, we are
      if (this.socket.isPaused()) this.armPacket();
      else this.expire('packet', limit);
    }, limit);
    this.packetTimer.unref();
  }

  private expire(bound: 'packet' | 'connect', limit: number): void {
    metrics.connectionLimits.inc({ front: 'milter', bound });
    this.log.warn(
      { event: 'milter_timeout', front: 'milter', peer: this.socket.remoteAddress, bound, limit_ms: limit },
      bound === 'packet' ? 'milter packet not complete in time: closing this connection' : 'milter connection did not start a session in time: closing it',
    );
    this.opts.expire(bound);
  }

  stop(): void {
    clearTimeout(this.packetTimer);
    clearTimeout(this.connectTimer);
  }
}
