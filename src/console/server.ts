// The web console: a Fastify app assembled from plugins. Fastify because it is well kept (OpenJS
// Foundation, frequent releases), small, and its first-party plugins cover what a console must get
// right and should not hand-roll: signed cookies (@fastify/cookie), CSRF tokens
// (@fastify/csrf-protection), form bodies (@fastify/formbody) and rate limits (@fastify/rate-limit).
// Pages are rendered on the server (layout.ts); nothing comes from a CDN and no page has a script, so
// it works offline and under a Content-Security-Policy that lets the browser load nothing remote.
//
// Routes: auth.ts (sign-in), admin/*.ts (the admins' pages), recipient.ts (the recipients' page behind
// a digest link, no session: the signed link is the authority).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from '../observe/log.js';
import { inNetworks } from '../policy/network.js';
import type { Policy } from '../policy/schema.js';
import { QuarantineCatalog } from '../quarantine/catalog.js';
import { QuarantineError, QuarantineStore } from '../quarantine/store.js';
import { installAuth, isRecipientPath, sendError } from './auth.js';
import { csrfUser } from './respond.js';
import { overviewRoutes } from './admin/overview.js';
import { quarantineRoutes } from './admin/quarantine.js';
import { senderRoutes } from './admin/senders.js';
import { recipientRoutes } from './recipient.js';
import type { ConsoleState } from './state.js';
import { CONSOLE_CSS } from './style.js';
import { UserFile } from './users.js';

export interface ConsoleOptions {
  /** the current policy (a reload changes filters, roles and the downstream; the listen address needs a restart) */
  policy: () => Policy;
  state: ConsoleState;
  log: Logger;
}

/** What the route plugins share. */
export interface ConsoleDeps {
  policy: () => Policy;
  state: ConsoleState;
  store: QuarantineStore;
  catalog: QuarantineCatalog;
  /** the console's log (what the quarantine code logs by itself goes here) */
  log: Logger;
}

/** The key that signs session and CSRF cookies: read from console.secretFile, made (0600) when missing. */
export function loadSecret(file: string): Buffer {
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (text.length < 32) throw new Error(`${file}: the console secret is shorter than 32 characters`);
    return Buffer.from(text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  return Buffer.from(secret);
}

/**
 * Headers on every answer. The CSP is the browser's half of the safe preview: no script at all, no
 * image, font, frame or connection to anywhere; only the console's own stylesheet.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; script-src 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

export async function buildConsole(options: ConsoleOptions): Promise<FastifyInstance> {
  const { policy, log } = options;
  const initial = policy();
  const secret = loadSecret(initial.console.secretFile);
  const store = new QuarantineStore(initial.quarantine.dir);
  const catalog = new QuarantineCatalog(store);
  const users = new UserFile(initial.console.users);
  const tls = initial.console.tls;
  // one type for HTTP and HTTPS: the routes never touch the raw server
  const app = Fastify({
    ...(tls ? { https: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } } : {}),
    loggerInstance: log.child({ component: 'console' }),
    // the console logs what matters itself (sign-ins, actions, refusals), not every request
    logController: new LogController({ disableRequestLogging: true }),
    // only a listed proxy's X-Forwarded-For/-Proto count (request.ip, request.protocol)
    trustProxy: (address: string) => inNetworks(policy().console.proxies, address),
    bodyLimit: 256 * 1024,
    // a browser's keep-alive connection must not hold up the gateway's drain (or the demo's Ctrl-C) until it times out
    forceCloseConnections: true,
    // a recipient link's token is one path segment of up to 2048 characters (tokens.ts)
    routerOptions: { maxParamLength: 2048 },
  }) as unknown as FastifyInstance;

  await app.register(fastifyCookie, { secret });
  await app.register(fastifyFormbody);
  await app.register(fastifyCsrf, {
    sessionPlugin: '@fastify/cookie',
    cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, signed: true, secure: 'auto' },
    // a token is bound to the signed-in user: another user's token (cookie tossing) does not pass
    getUserInfo: (request) => csrfUser(request.user?.name),
    csrfOpts: { hmacKey: secret },
    getToken: (request) => (request.body as { _csrf?: string } | undefined)?._csrf,
  });
  await app.register(fastifyRateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => Object.assign(new Error('login rate limit'), { statusCode: 429, retryAfter: context.ttl }),
  });

  app.addHook('onSend', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
    if (!reply.getHeader('cache-control')) reply.header('cache-control', 'no-store');
  });

  installAuth(app, { policy, users });
  // every POST carries a CSRF token bound to the user; checked before any handler runs (the
  // recipients' forms carry one bound to their link instead, checked by recipient.ts)
  app.addHook('preHandler', (request, reply, done) => {
    if (request.method !== 'POST' || isRecipientPath(request.url.split('?')[0])) return done();
    app.csrfProtection(request, reply, done);
  });

  app.get('/assets/console.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=3600').send(CONSOLE_CSS));

  // before the route plugins: a child context keeps the handlers its parent had when it was made
  app.setNotFoundHandler((request, reply) => sendError(request, reply, 404, 'notFound'));
  app.setErrorHandler(async (error: FastifyError & { retryAfter?: number }, request, reply) => {
    if (error.statusCode === 429) {
      reply.header('retry-after', Math.ceil((error.retryAfter ?? 60_000) / 1000));
      return sendError(request, reply, 429, 'loginLimited', { minutes: Math.max(1, Math.ceil((error.retryAfter ?? 60_000) / 60_000)) });
    }
    if (error.code?.startsWith('FST_CSRF')) {
      request.log.warn({ event: 'console_csrf_refused', user: request.user?.name, path: request.url }, 'console: POST without a valid CSRF token');
      return sendError(request, reply, 403, 'csrfRefused');
    }
    if (error instanceof QuarantineError) {
      // bad input (a malformed or unknown id): the store's message says which
      const status = error.kind === 'not-found' ? 404 : ['invalid-id', 'usage', 'corrupt'].includes(error.kind) ? 400 : 409;
      return sendError(request, reply, status, 'plain', { message: error.message });
    }
    if (error.statusCode && error.statusCode < 500) return sendError(request, reply, error.statusCode, 'plain', { message: error.message });
    request.log.error({ event: 'console_error', err: error.message, path: request.url }, 'console: request failed');
    return sendError(request, reply, 500, 'serverError', { message: error.message });
  });

  const deps: ConsoleDeps = { policy, state: options.state, store, catalog, log: log.child({ component: 'console' }) };
  await app.register(overviewRoutes, deps);
  await app.register(quarantineRoutes, deps);
  await app.register(senderRoutes, deps);
  await app.register(recipientRoutes, deps);

  // the first filtered page should not wait for 100,000 files to be read
  catalog.warm().catch((err: unknown) => log.warn({ event: 'console_catalog_failed', err: (err as Error).message }, 'console: reading the quarantine failed'));
  return app;
}

export interface RunningConsole {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** Builds the console and listens on console.listen (HTTPS with console.tls). */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const policy = options.policy();
  const at = policy.console.listen;
  if (!at) throw new Error('console.listen is not set: the console is off');
  const app = await buildConsole(options);
  await app.listen({ host: at.host, port: at.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${policy.console.tls ? 'https' : 'http'}://${host}:${address.port}/`;
  options.log.info({ event: 'console_listening', url }, 'mailmoat console ready');
  return { app, url, close: () => app.close() };
}
