// The milter front end: a TCP or UNIX-socket listener that Postfix (smtpd_milters) or Sendmail
// (INPUT_MAIL_FILTER) connects to, one connection per SMTP session. Each connection is a
// MilterSession feeding the same pipeline as the SMTP proxy. A broken connection (junk, a packet
// too large, a peer that vanishes mid-message) ends only itself; the listener keeps serving.
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from '../observe/log.js';
import type { Services } from '../pipeline.js';
import { DEFAULT_MAX_PACKET, PacketReader } from './codec.js';
import { MilterSession, type EnvelopeHooks, type PolicySource } from './session.js';
import { RateLimiter } from '../rate/limiter.js';
import { PasswordPairs } from '../quarantine/password-pairs.js';
import { MilterConnectionGuard } from './connection-guard.js';

export type MilterAddress = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/** `inet:HOST:PORT`, `inet:[::1]:PORT`, `inet:PORT` (loopback) or `unix:/path` (`local:` too, as in Postfix). */
export function parseMilterAddress(spec: string): MilterAddress {
  const unix = /^(?:unix|local):(.+)$/.exec(spec);
  if (unix) return { kind: 'unix', path: unix[1] };
  const inet = /^inet:(?:\[([^\]]+)\]|([^:]+):)?:?(\d{1,5})$/.exec(spec);
  if (inet) {
    const port = Number(inet[3]);
    if (port <= 65535) return { kind: 'inet', host: inet[1] ?? inet[2] ?? '127.0.0.1', port };
  }
  throw new Error(`milter address ${JSON.stringify(spec)}: expected inet:HOST:PORT or unix:/path`);
}

export interface MilterServerOptions {
  hooks?: EnvelopeHooks;
  /** cap on one incoming packet (default 1 MiB) */
  maxPacket?: number;
  /** shared state for the analyzers, as the SMTP front end gets it */
  services?: Services;
}

export class MilterServer {
  readonly server: net.Server;
  private readonly sessions = new Set<MilterSession>();
  private draining = false;
  private unixPath: string | undefined;
  private readonly hooks: EnvelopeHooks;
  private readonly maxPacket: number;
  private readonly services: Services | undefined;
  /** connections overall and per peer, packets in progress, session start */
  private readonly guard: MilterConnectionGuard;
  /** outbound sender rates: the MAIL-time hold (unless a hook is given) and counting after the verdict */
  readonly rate: RateLimiter;
  /** the separate password mail: held encrypted items and the passwords that come later (or earlier) */
  readonly pairs: PasswordPairs;

  constructor(
    private readonly source: PolicySource,
    private readonly log: Logger,
    options: MilterServerOptions = {},
  ) {
    this.hooks = options.hooks ?? {};
    this.maxPacket = options.maxPacket ?? DEFAULT_MAX_PACKET;
    this.services = options.services;
    this.guard = new MilterConnectionGuard(source, log);
    const state = options.services?.state ?? { kind: 'memory' };
    this.rate = new RateLimiter(state, log);
    this.pairs = new PasswordPairs(state, log);
    // a MAIL-time hold (suspended or held sender) costs the MTA a reply at MAIL: only with rates on
    if (source.policy.rate.enabled)
      this.hooks.mail ??= async (ctx) => {
        const held = await this.rate.checkMail(ctx.policy, ctx.id, ctx.client.address, ctx.mailFrom);
        if (!held) return undefined;
        const [, enhanced = '4.7.1', text = held.message] = /^(\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(held.message) ?? [];
        return { code: held.responseCode, enhanced, text };
      };
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.error({ event: 'milter_error', front: 'milter', err: err.message }, 'milter listener error'));
  }

  /** The sender-rate engine (or anything deciding at MAIL/RCPT) plugs in here; takes effect for new connections. */
  setHooks(hooks: EnvelopeHooks): void {
    Object.assign(this.hooks, hooks);
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Messages between MAIL and their final reply. */
  get activeMessages(): number {
    let n = 0;
    for (const s of this.sessions) if (s.busy) n++;
    return n;
  }

  /** Starts listening; a stale UNIX socket file (nobody answering on it) is replaced. */
  async listen(spec: string | MilterAddress): Promise<string> {
    const address = typeof spec === 'string' ? parseMilterAddress(spec) : spec;
    if (address.kind === 'unix') {
      await removeStaleSocket(address.path);
      this.unixPath = address.path;
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        resolve();
      };
      if (address.kind === 'unix') this.server.listen(address.path, done);
      else this.server.listen(address.port, address.host, done);
    });
    const bound = this.server.address();
    if (typeof bound === 'string') return `unix:${bound}`;
    const info = bound as net.AddressInfo;
    return `inet:${info.family === 'IPv6' ? `[${info.address}]` : info.address}:${info.port}`;
  }

  get port(): number | undefined {
    const bound = this.server.address();
    return bound && typeof bound === 'object' ? bound.port : undefined;
  }

  private accept(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const reader = new PacketReader(this.maxPacket);
    const refusal = this.guard.admit(socket);
    const session = new MilterSession(socket, {
      source: this.source,
      log: this.log,
      hooks: this.hooks,
      maxPacket: this.maxPacket,
      services: this.services,
      rate: this.rate,
      pairs: this.pairs,
      refusal,
    });
    this.sessions.add(session);
    const clock = this.guard.watch(socket, { refused: !!refusal, started: () => session.started, expire: () => session.close() });
    socket.on('data', (chunk: Buffer) => {
      try {
        const packets = reader.push(chunk);
        clock.received(reader.pending, packets.length > 0);
        session.enqueue(packets);
      } catch (err) {
        session.protocolError(err);
      }
    });
    socket.on('error', () => undefined); // a reset peer: 'close' follows
    socket.on('close', () => {
      this.sessions.delete(session);
      session.ended();
    });
  }

  /**
   * SIGTERM: stop accepting; close connections between messages at once (the MTA applies
   * milter_default_action to what follows); let messages in flight get their verdict, up to
   * timeouts.drain; then close everything.
   */
  async drain(): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + this.source.policy.timeouts.drain;
    for (const session of this.sessions) {
      if (!session.busy) session.close();
      else session.onIdle = () => session.close();
    }
    while (this.activeMessages && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const session of this.sessions) session.close();
    // held items being tried with a password mail: what is not done by then stays held
    await this.pairs.drain(Math.max(0, deadline - Date.now()) + 5000);
    await closed;
    if (this.unixPath) {
      try {
        unlinkSync(this.unixPath);
      } catch {
        // already gone
      }
    }
  }
}

/** A socket file left by a previous run that crashed: remove it unless something still listens there. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`${path}: another process is listening on this socket`);
  unlinkSync(path);
}
