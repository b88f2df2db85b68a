// What every page handler needs: the request's language, its translator, the signed-in user and a
// CSRF token for its forms; and the one way a page is sent.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { chooseLang, isLang, translator, type Lang } from './i18n.js';
import type { Html, PageContext } from './layout.js';

const YEAR = 365 * 24 * 3600;

/** What a CSRF token is bound to: the user, or (on the sign-in form) nobody, which no user name can equal. */
export function csrfUser(name: string | undefined): string {
  return name ?? '(nobody)';
}

/** The language a request asks for with `?lang=` or its cookie (the switch), remembered when switched. */
export function switchedLang(request: FastifyRequest, reply: FastifyReply): Lang | undefined {
  const asked = (request.query as { lang?: unknown } | undefined)?.lang;
  // the switch is remembered: a preference, not an action
  if (isLang(asked)) {
    reply.setCookie('lang', asked, { path: '/', sameSite: 'lax', httpOnly: true, maxAge: YEAR, secure: request.protocol === 'https' });
    return asked;
  }
  return isLang(request.cookies.lang) ? request.cookies.lang : undefined;
}

export function pageContext(request: FastifyRequest, reply: FastifyReply): PageContext {
  const lang = switchedLang(request, reply) ?? chooseLang(undefined, undefined, request.headers['accept-language']);
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
