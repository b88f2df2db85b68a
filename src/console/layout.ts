// Server-rendered HTML: the `html` template escapes everything it is given unless it is already
// Html (so a value from a message can only ever be text), and `page` wraps a body in the one layout:
// header with navigation, the signed-in user, the language switch. No script anywhere: every page
// works with the Content-Security-Policy `script-src 'none'`.
import { escapeControl } from '../quarantine/escape.js';
import type { Lang, Translate } from './i18n.js';

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ENTITIES[ch]);
}

type Value = Html | string | number | boolean | null | undefined | Value[];

function render(value: Value): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  // control characters and bidi overrides from a message are shown escaped, as the CLI does
  return escapeHtml(escapeControl(String(value)));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Already-safe markup from a trusted producer (the sanitiser, the chart renderer). */
export function trusted(markup: string): Html {
  return new Html(markup);
}

/** Multi-line text as text: line breaks and tabs kept (in a <pre>), every other control character escaped. */
export function multiline(text: string): Html {
  return new Html(
    text
      .split(/\r?\n/)
      .map((line) => escapeHtml(line.split('\t').map(escapeControl).join('\t')))
      .join('\n'),
  );
}

export interface PageContext {
  lang: Lang;
  t: Translate;
  /** the path and query of this page, for the language switch */
  url: string;
  user?: { name: string; role: 'admin' | 'auditor' };
  /** the CSRF token for this page's forms */
  csrf?: string;
}

/** A form's hidden CSRF field. */
export function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf ?? ''}" />`;
}

function withLang(url: string, lang: Lang): string {
  const u = new URL(url, 'http://console');
  u.searchParams.set('lang', lang);
  return u.pathname + u.search;
}

export function page(ctx: PageContext, title: string, body: Html, active?: 'overview' | 'quarantine' | 'senders'): Html {
  const { t } = ctx;
  const nav = ctx.user
    ? html`<nav>
        <a href="/" class="${active === 'overview' ? 'on' : ''}">${t('navOverview')}</a>
        <a href="/quarantine" class="${active === 'quarantine' ? 'on' : ''}">${t('navQuarantine')}</a>
        <a href="/senders" class="${active === 'senders' ? 'on' : ''}">${t('navSenders')}</a>
      </nav>`
    : '';
  const who = ctx.user
    ? html`<span class="who">${t('signedInAs', { name: ctx.user.name, role: t(ctx.user.role === 'admin' ? 'roleAdmin' : 'roleAuditor') })}</span>
        <form method="post" action="/logout" class="inline">${csrfField(ctx)}<button type="submit" class="link">${t('logout')}</button></form>`
    : '';
  return html`<!doctype html>
    <html lang="${ctx.lang}">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${title} · ${t('appName')}</title>
        <link rel="stylesheet" href="/assets/console.css" />
      </head>
      <body>
        <header>
          <a href="/" class="brand">${t('appName')}</a>
          ${nav}
          <div class="right">
            ${who}
            <span class="lang" title="${t('language')}"
              >${ctx.lang === 'ja' ? html`<a href="${withLang(ctx.url, 'en')}" hreflang="en">English</a>` : html`<a href="${withLang(ctx.url, 'ja')}" hreflang="ja">日本語</a>`}</span
            >
          </div>
        </header>
        <main>
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `;
}
