// What every page handler needs: the request's language, its translator, the signed-in user and a
// CSRF token for its forms; and the one way a page is sent.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { chooseLang, translator } from './i18n.js';
import type { Html, PageContext } from './layout.js';

const YEAR = 365 * 24 * 3600;

/** What a CSRF token is bound to: the user, or (on the sign-in form) nobody, which no user name can equal. */
export function csrfUser(name: string | undefined): string {
  return name ?? '(nobody)';
}

export function pageContext(request: FastifyRequest, reply: FastifyReply): PageContext {
  const asked = (request.query as { lang?: unknown } | undefined)?.lang;
  const lang = chooseLang(asked, request.cookies.lang, request.headers['accept-language']);
  // the switch is remembered: a preference, not an action
  if (asked === lang) reply.setCookie('lang', lang, { path: '/', sameSite: 'lax', httpOnly: true, maxAge: YEAR, secure: request.protocol === 'https' });
  const csrf = reply.generateCsrf({ userInfo: csrfUser(request.user?.name) });
  return {
    lang,
    t: translator(lang),
    url: request.url,
    ...(request.user ? { user: { name: request.user.name, role: request.user.role } } : {}),
    csrf,
  };
}

export function sendPage(reply: FastifyReply, body: Html): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(body.value);
}
