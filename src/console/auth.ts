// Who is asking, and may they: sign-in with a local account (console.users, scrypt) or a trusted
// reverse proxy's header (console.sso.header, believed only from console.proxies); the session
// cookie; the login rate limit; the roles (admin acts, auditor only reads).
//
// The session is a signed cookie (HMAC with the key in console.secretFile, by @fastify/cookie):
// HttpOnly, SameSite=Strict, Secure whenever the console is reached over HTTPS, and it holds only the
// user's name and when it was issued. Every request looks the user up in the accounts file again, so
// removing a user or changing their password or role takes effect at once.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { inNetworks } from '../policy/network.js';
import type { Policy } from '../policy/schema.js';
import { translator, type MessageKey } from './i18n.js';
import { html, page, csrfField } from './layout.js';
import { pageContext, sendPage } from './respond.js';
import { hashPassword, USER_NAME, verifyPassword, type Role, type UserFile } from './users.js';

export const SESSION_COOKIE = 'mm_session';

export interface ConsoleUser {
  name: string;
  role: Role;
  via: 'password' | 'sso';
}

declare module 'fastify' {
  interface FastifyRequest {
    user: ConsoleUser | undefined;
  }
}

/** Paths anyone may open: the sign-in page and the stylesheet. */
const PUBLIC = new Set(['/login', '/assets/console.css', '/favicon.ico']);

/**
 * The recipients' pages behind a digest link (recipient.ts): no session, no role. The signed link
 * token in the path is the authority, checked by that plugin on every request, and its forms carry
 * a CSRF token bound to the link instead of the session's.
 */
export function isRecipientPath(path: string): boolean {
  return path.startsWith('/r/');
}

export interface AuthOptions {
  policy: () => Policy;
  users: UserFile;
}

/** A hash to compare against when the user does not exist, so a wrong name costs as long as a wrong password. */
let decoyHash: Promise<string> | undefined;

function sessionUser(request: FastifyRequest, users: UserFile, ttl: number): ConsoleUser | undefined {
  const raw = request.cookies[SESSION_COOKIE];
  if (!raw) return undefined;
  const unsigned = request.unsignCookie(raw);
  if (!unsigned.valid || !unsigned.value) return undefined;
  const [name = '', issuedText = ''] = unsigned.value.split('|');
  const issued = Number(issuedText);
  if (!Number.isFinite(issued) || Date.now() - issued > ttl || issued > Date.now() + 60_000) return undefined;
  const account = users.get(name);
  // a new password (or role change) since the session began ends the session
  if (!account || issued < Date.parse(account.changed)) return undefined;
  return { name, role: account.role, via: 'password' };
}

function ssoUser(request: FastifyRequest, policy: Policy, users: UserFile): ConsoleUser | undefined {
  const header = policy.console.sso.header;
  if (!header) return undefined;
  const value = request.headers[header.toLowerCase()];
  if (value === undefined) return undefined;
  const peer = request.socket.remoteAddress ?? '';
  if (!inNetworks(policy.console.proxies, peer)) {
    request.log.warn({ event: 'console_sso_refused', peer, header }, `console: ${header} from ${peer}, which is not in console.proxies: ignored`);
    return undefined;
  }
  const name = (Array.isArray(value) ? value[0] : value).trim();
  if (!USER_NAME.test(name)) {
    request.log.warn({ event: 'console_sso_refused', peer, header }, `console: ${header} does not hold a usable user name: ignored`);
    return undefined;
  }
  return { name, role: users.get(name)?.role ?? policy.console.sso.role, via: 'sso' };
}

function isHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const { policy, users } = options;
  app.decorateRequest('user', undefined);

  app.addHook('onRequest', async (request) => {
    const p = policy();
    request.user = ssoUser(request, p, users) ?? sessionUser(request, users, p.console.sessionTtl);
  });

  // after the body is parsed (the CSRF token is in it) and checked (server.ts): signed in, and the right role
  app.addHook('preHandler', async (request, reply) => {
    const path = request.url.split('?')[0];
    if (PUBLIC.has(path) || isRecipientPath(path)) return;
    if (!request.user) {
      if (request.method === 'GET' || request.method === 'HEAD') {
        return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      }
      return sendError(request, reply, 401, 'forbidden');
    }
    if (request.method === 'POST' && path !== '/logout' && request.user.role !== 'admin') {
      request.log.warn({ event: 'console_forbidden', user: request.user.name, path }, 'console: an auditor tried an action');
      return sendError(request, reply, 403, 'forbiddenAuditor');
    }
  });

  const limit = policy().console.loginLimit;
  app.get('/login', async (request, reply) => {
    if (request.user) return reply.redirect('/', 303);
    return loginPage(request, reply, 200);
  });

  app.post(
    '/login',
    { config: { rateLimit: { max: limit.attempts, timeWindow: limit.window } } },
    async (request: FastifyRequest<{ Body: { user?: string; password?: string; next?: string } }>, reply) => {
      const name = String(request.body?.user ?? '').trim();
      const password = String(request.body?.password ?? '');
      const account = USER_NAME.test(name) ? users.get(name) : undefined;
      decoyHash ??= hashPassword('decoy password');
      const ok = await verifyPassword(password, account?.hash ?? (await decoyHash));
      if (!account || !ok) {
        request.log.warn({ event: 'console_login_failed', user: name.slice(0, 64), client: request.ip }, 'console: sign-in failed');
        return loginPage(request, reply, 401, 'loginFailed');
      }
      const ttl = policy().console.sessionTtl;
      reply.setCookie(SESSION_COOKIE, `${name}|${Date.now()}`, {
        signed: true,
        httpOnly: true,
        sameSite: 'strict',
        secure: isHttps(request),
        path: '/',
        maxAge: Math.floor(ttl / 1000),
      });
      request.log.info({ event: 'console_login', user: name, role: account.role, client: request.ip }, 'console: signed in');
      const next = String(request.body?.next ?? '/');
      // only a path of this console: never an open redirect
      return reply.redirect(/^\/(?![/\\])/.test(next) ? next : '/', 303);
    },
  );

  app.post('/logout', async (request, reply) => {
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    request.log.info({ event: 'console_logout', user: request.user?.name }, 'console: signed out');
    return reply.redirect('/login', 303);
  });
}

async function loginPage(request: FastifyRequest, reply: FastifyReply, status: number, problem?: MessageKey): Promise<FastifyReply> {
  const ctx = pageContext(request, reply);
  const { t } = ctx;
  const next = (request.query as { next?: string } | undefined)?.next ?? (request.body as { next?: string } | undefined)?.next ?? '/';
  const body = html`<div class="login card">
    ${problem ? html`<p class="error">${t(problem)}</p>` : ''}
    <form method="post" action="/login">
      ${csrfField(ctx)}
      <input type="hidden" name="next" value="${String(next)}" />
      <label>${t('loginUser')}<input name="user" autocomplete="username" required autofocus /></label>
      <label>${t('loginPassword')}<input name="password" type="password" autocomplete="current-password" required /></label>
      <button type="submit" class="primary">${t('loginButton')}</button>
    </form>
  </div>`;
  return sendPage(reply.code(status), page(ctx, t('loginTitle'), body));
}

/** An error as a page in the user's language (or JSON-free plain HTML for the login limit). */
export async function sendError(request: FastifyRequest, reply: FastifyReply, status: number, key: MessageKey, params?: Record<string, string | number>) {
  const ctx = pageContext(request, reply);
  const t = translator(ctx.lang);
  const title = status === 404 ? t('notFound') : status === 400 ? t('badRequest') : t('forbidden');
  return sendPage(
    reply.code(status),
    page(
      ctx,
      title,
      html`<p class="error">${t(key, params)}</p>
        <p><a href="/">${t('navOverview')}</a></p>`,
    ),
  );
}
