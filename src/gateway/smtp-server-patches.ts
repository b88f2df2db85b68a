// Five small changes smtp-server needs to act as a transparent proxy, applied to its connection class.
// smtp-server has no option for any of them (see ../shared/reference/smtp-proxy-and-libraries.md §4.2):
//
// 1. greeting delay: init() waits a fixed 100 ms before the banner ("early talker" check). Postfix's
//    smtpd_proxy_filter opens one connection per message, so this caps a proxy session at ~10 msg/s.
//    The patched init() waits `greetingDelay` ms (policy timeouts.greetingDelay, default 0).
// 2. own enhanced status codes: with ENHANCEDSTATUSCODES on, send() prefixes a generic code (5.0.0)
//    to every reply. A proxy must pass the downstream's own code (550 5.1.1) and give exact ones
//    (554 5.7.1), so a reply text that already starts with an enhanced code is sent as is.
// 3. raw MAIL/RCPT lines: the hooks get parsed addresses; the proxy forwards the client's command
//    verbatim (every ESMTP parameter, in order), so the raw line is kept for the hook. A line with a
//    control character (a bare CR, NUL...) or bytes that are not UTF-8 gets 501 5.5.2 before any of it.
// 4. XFORWARD from Postfix must never get a 501 (it would tempfail all mail): a NAME that is not a
//    strict hostname (Postfix forwards whatever DNS returned) is treated as unknown, and the values
//    exactly as received are kept for forwarding downstream (smtp-server lower-cases HELO).
// 5. a connection observer (./connection-guard.ts): smtp-server has hooks for MAIL, RCPT and DATA
//    only, so the observer is told of every command line before it is handled (and may stop it: it
//    closed the connection), of every reply code sent, and of a client finding maxClients reached
//    (it may close a stalled connection to make room). It also reads the connection state that
//    smtp-server's own idle timeout reads (handler pending, parser in DATA), checked here too.
//
// Each patch checks that the code it replaces is the code it was written against and throws
// SmtpServerPatchError otherwise, so an smtp-server upgrade that changes them fails loudly at startup
// (and in test/unit/smtp-server-patches.test.ts) instead of silently misbehaving.
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { decodeXtext } from '../relay/xtext.js';
import { commandLineFault } from './command-line.js';

export class SmtpServerPatchError extends Error {
  override name = 'SmtpServerPatchError';
}

/** Raw `MAIL FROM:`/`RCPT TO:` line of the command being handled, per session. */
const lastCommandLine = new WeakMap<object, string>();
/** XFORWARD attributes exactly as received (still xtext-encoded), per session.xForward map. */
const rawXforward = new WeakMap<object, Map<string, string>>();

export function commandLine(session: SMTPServerSession): string {
  const line = lastCommandLine.get(session);
  if (line === undefined) throw new SmtpServerPatchError('no raw command line recorded for this session');
  return line;
}

export function receivedXforward(session: SMTPServerSession): Map<string, string> | undefined {
  return rawXforward.get((session as unknown as { xForward: object }).xForward);
}

/** Told of each command line and each reply of the connections of one SMTPServer. */
export interface ConnectionObserver {
  /** a command line about to be handled; false: do not handle it (the observer closed the connection) */
  command(connection: SMTPConnection, line: Buffer): boolean;
  /** a reply just sent */
  reply(connection: SMTPConnection, code: number): void;
  /** a new connection finds every maxClients slot taken: true if the observer closed another to make room */
  full(newcomer: SMTPConnection): boolean;
}

const observers = new WeakMap<object, ConnectionObserver>();

export function observeConnections(server: SMTPServer, observer: ConnectionObserver): void {
  applySmtpServerPatches();
  observers.set(server, observer);
}

const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;
const STRICT_HOSTNAME = /^([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.?$/i;

type Proto = Record<string, unknown> & {
  init: (this: ConnectionInternals) => void;
  send: (this: ConnectionInternals, code: number, data?: string | string[], context?: unknown) => void;
  handler_MAIL: Handler;
  handler_RCPT: Handler;
  handler_XFORWARD: Handler;
  _onCommand: (this: ConnectionInternals, command: Buffer, callback?: () => void) => void;
};
type Handler = (this: ConnectionInternals, command: Buffer, callback: () => void) => void;
interface ConnectionInternals {
  _server: { options: { maxClients?: number; greetingDelay?: number }; connections: Set<unknown> };
  _setListeners(callback: () => void): void;
  connectionReady(): void;
  send(code: number, data?: string | string[], context?: unknown): void;
  name: string;
  session: SMTPServerSession & { xForward: object };
}

const ORIGINAL_INIT = `init() {
        this._setListeners(() => {
            if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
                return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
            }
            let readyTimer = setTimeout(() => this.connectionReady(), 100);
            readyTimer.unref();
        });
    }`;

function withoutComments(source: string): string {
  return source
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/\s+/g, ' ')
    .trim();
}

export function expectSource(name: string, fn: unknown, expected: string | RegExp): void {
  const source = typeof fn === 'function' ? withoutComments(fn.toString()) : '';
  const ok = typeof expected === 'string' ? source === withoutComments(expected) : expected.test(source);
  if (!ok) {
    throw new SmtpServerPatchError(
      `smtp-server's SMTPConnection.${name} is not the code Mailmoat patches (smtp-server was upgraded?). ` +
        'Review src/gateway/smtp-server-patches.ts against the new version.',
    );
  }
}

let applied = false;

export function applySmtpServerPatches(): void {
  if (applied) return;
  const proto = SMTPConnection.prototype as unknown as Proto;

  expectSource('init', proto.init, ORIGINAL_INIT);
  expectSource('send', proto.send, /this\._getEnhancedStatusCode\(code, context\)/);
  expectSource('_getEnhancedStatusCode', proto._getEnhancedStatusCode, /if \(context === false \|\|/);
  expectSource('handler_MAIL', proto.handler_MAIL, /^handler_MAIL\(command, callback\)/);
  expectSource('handler_RCPT', proto.handler_RCPT, /^handler_RCPT\(command, callback\)/);
  expectSource('handler_XFORWARD', proto.handler_XFORWARD, /parseProxyParameters\(parts, allowedKeys, \['\[UNAVAILABLE\]'\]\)/);
  expectSource('_onCommand', proto._onCommand, /^_onCommand\(command, callback\)/);
  // the state the connection guard reads means what it meant to smtp-server's own idle timeout
  expectSource('_onTimeout', proto._onTimeout, /this\._handlerPending \|\| \(this\._dataStream && this\._parser && !this\._parser\._dataMode\)/);
  // a 421 closes the connection (the guard's replies rely on it)
  expectSource('send', proto.send, /if \(code === 421\) \{ this\.close\(\); \}/);

  proto.init = function init() {
    this._setListeners(() => {
      const { maxClients, greetingDelay = 0 } = this._server.options;
      // full: the observer may give this client the slot of a stalled connection
      const room = () => observers.get(this._server)?.full(this as unknown as SMTPConnection) === true;
      if (maxClients && this._server.connections.size > maxClients && !room()) {
        return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
      }
      if (greetingDelay > 0) setTimeout(() => this.connectionReady(), greetingDelay).unref();
      else this.connectionReady();
    });
  };

  const send = proto.send;
  proto.send = function (code, data, context) {
    const first = Array.isArray(data) ? data[0] : data;
    const ownCode = context !== false && typeof first === 'string' && ENHANCED_CODE.test(first);
    send.call(this, code, data, ownCode ? false : context);
    observers.get(this._server)?.reply(this as unknown as SMTPConnection, code);
  };

  const onCommand = proto._onCommand;
  proto._onCommand = function (command, callback) {
    if (observers.get(this._server)?.command(this as unknown as SMTPConnection, command) === false) return;
    return onCommand.call(this, command, callback);
  };

  for (const name of ['handler_MAIL', 'handler_RCPT'] as const) {
    const handler = proto[name];
    proto[name] = function (command, callback) {
      // a line the downstream could read differently (a bare CR ends a command for some MTAs) is a
      // syntax error here and now, never a downstream round trip
      const fault = commandLineFault(command);
      if (fault) {
        this.send(501, `5.5.2 Syntax error: ${fault}`);
        return callback();
      }
      lastCommandLine.set(this.session, command.toString('utf8').trim());
      return handler.call(this, command, callback);
    };
  }

  const xforward = proto.handler_XFORWARD;
  proto.handler_XFORWARD = function (command, callback) {
    const [verb = 'XFORWARD', ...parts] = command.toString('utf8').trim().split(/\s+/);
    const received = new Map<string, string>();
    const tolerated = parts.map((part) => {
      const eq = part.indexOf('=');
      if (eq <= 0) return part;
      const key = part.slice(0, eq).toUpperCase();
      const value = part.slice(eq + 1);
      received.set(key, value);
      const decoded = decodeXtext(value);
      if (key === 'NAME' && decoded.toUpperCase() !== '[UNAVAILABLE]' && !STRICT_HOSTNAME.test(decoded)) {
        return 'NAME=[UNAVAILABLE]';
      }
      return part;
    });
    const map = this.session.xForward;
    const previous = rawXforward.get(map) ?? new Map<string, string>();
    return xforward.call(this, Buffer.from([verb, ...tolerated].join(' ')), () => {
      // smtp-server keeps one Map per connection and fills it only when it accepted the command
      const accepted = this.session.xForward as Map<string, unknown>;
      if ([...received.keys()].every((k) => accepted.has(k))) {
        for (const [k, v] of received) previous.set(k, v);
        rawXforward.set(accepted, previous);
      }
      callback();
    });
  };
  applied = true;
}
