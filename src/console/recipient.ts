// The recipients' page behind a digest link (`/r/TOKEN`), without a session: the signed token
// (tokens.ts) names one item and one recipient, and is the only authority. Opening the link changes
// nothing, since link scanners fetch URLs: it shows what that recipient may see of the message (the
// safe preview of preview.ts, their own envelope address only, never the other recipients or the
// headers; why it was held in plain words) and what they may do. The actions are POSTs to
// `/r/TOKEN/release` and `/r/TOKEN/request`, confirmed in a second POST like the admins' actions, and
// go through src/quarantine/requests.ts with the recipient the verified token names, never one from
// the form. Their CSRF token is an HMAC of the link token under the link key: a page can post only
// if it was given the link, which is what acting needs anyway, and no cookie is needed.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Policy } from '../policy/schema.js';
import { domainLanguage, explainSymbols, formatTime } from '../quarantine/digest-text.js';
import { declinedRequest, pendingRequests, RecipientActionError, releaseOwnCopy, requestRelease, type RecipientContext } from '../quarantine/requests.js';
import { holdingFindings } from '../quarantine/rights.js';
import type { QuarantineMetadata } from '../quarantine/store.js';
import { formatReply } from '../relay/smtp-client.js';
import type { StateBackend } from '../state/index.js';
import { acceptedLang, translator, type Lang, type MessageKey } from './i18n.js';
import { csrfField, html, multiline, page, type Html, type PageContext } from './layout.js';
import { buildPreview, renderAttachments, renderPreview } from './preview.js';
import { openRecipientLink, type RecipientLink } from './recipient-link.js';
import { sendPage, switchedLang } from './respond.js';
import type { ConsoleDeps } from './server.js';
import { readTokenKey, TokenKeyError } from './tokens.js';

type Ok = Extract<RecipientLink, { status: 'ok' }>;
type Form = { _csrf?: string; confirm?: string; note?: string };
type LinkRequest = FastifyRequest<{ Params: { token: string }; Body: Form | undefined }>;

/** Longest note a recipient may send with a request (requests.ts keeps 500 characters of it). */
const NOTE_MAX = 500;

/** The CSRF token of a link's forms. */
export function linkCsrf(key: Buffer, token: string): string {
  return createHmac('sha256', key).update('mailmoat recipient form v1\n').update(token).digest('base64url');
}

function csrfMatches(key: Buffer, token: string, given: unknown): boolean {
  const expected = Buffer.from(linkCsrf(key, token));
  const got = Buffer.from(typeof given === 'string' ? given : '');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/**
 * The page's language: the switch (`?lang=`, its cookie), else what quarantine.digest.languages sets
 * for the recipient's domain (the digest they just read was in it), else the browser's
 * Accept-Language when it names English or Japanese, else quarantine.digest.language.
 */
function recipientLang(request: FastifyRequest, reply: FastifyReply, policy: Policy, recipient?: string): Lang {
  return (
    switchedLang(request, reply) ??
    (recipient ? domainLanguage(policy, recipient) : undefined) ??
    acceptedLang(request.headers['accept-language']) ??
    policy.quarantine.digest.language
  );
}

function context(request: FastifyRequest, reply: FastifyReply, policy: Policy, recipient?: string, csrf?: string): PageContext {
  const lang = recipientLang(request, reply, policy, recipient);
  return { lang, t: translator(lang), url: request.url, ...(csrf ? { csrf } : {}) };
}

function problem(request: FastifyRequest, reply: FastifyReply, policy: Policy, status: number, title: MessageKey, text: Html | string, recipient?: string) {
  const ctx = context(request, reply, policy, recipient);
  return sendPage(reply.code(status), page(ctx, ctx.t(title), html`<p class="error">${text}</p>`));
}

/** The link checked; undefined when a page saying why it cannot be used was sent. */
async function openLink(deps: ConsoleDeps, request: LinkRequest, reply: FastifyReply): Promise<{ link: Ok; key: Buffer; ctx: PageContext } | undefined> {
  const policy = deps.policy();
  let key: Buffer;
  try {
    key = await readTokenKey(policy.quarantine.digest.keyFile);
  } catch (err) {
    if (!(err instanceof TokenKeyError)) throw err;
    request.log.error({ event: 'recipient_link_key', err: err.message }, `console: recipient links cannot be checked: ${err.message}`);
    await problem(request, reply, policy, 503, 'rpTitle', translator(recipientLang(request, reply, policy))('rpNotSetUp'));
    return undefined;
  }
  const { token } = request.params;
  const link = await openRecipientLink(deps.store, policy, key, token);
  if (link.status === 'ok') return { link, key, ctx: context(request, reply, policy, link.recipient, linkCsrf(key, token)) };
  request.log.info({ event: 'recipient_link_refused', status: link.status, client: request.ip }, `console: a recipient link was refused (${link.status})`);
  const t = translator(recipientLang(request, reply, policy));
  if (link.status === 'expired') {
    await problem(request, reply, policy, 410, 'rpExpiredTitle', t('rpExpired', { time: formatTime(link.expiresAt, recipientLang(request, reply, policy)) }));
  } else if (link.status === 'not-found') {
    await problem(request, reply, policy, 404, 'rpGoneTitle', t('rpGone'));
  } else {
    await problem(request, reply, policy, 403, 'rpAlteredTitle', t('rpAltered'));
  }
  return undefined;
}

/** What the recipient sees of the item: envelope sender, From, Subject, time, themselves only. */
function summary(ctx: PageContext, meta: QuarantineMetadata, recipient: string): Html {
  const { t } = ctx;
  return html`<div class="card">
    <dl class="kv">
      <dt>${t('rpFrom')}</dt>
      <dd>${meta.headers?.from ?? '—'}</dd>
      <dt>${t('rpSender')}</dt>
      <dd class="addr">${meta.envelope.mailFrom || '<>'}</dd>
      <dt>${t('rpTo')}</dt>
      <dd class="addr">${t('rpYou', { recipient })}</dd>
      <dt>${t('qColSubject')}</dt>
      <dd>${meta.headers?.subject ?? '—'}</dd>
      <dt>${t('qColReceived')}</dt>
      <dd>${formatTime(Date.parse(meta.receivedAt), ctx.lang)}</dd>
    </dl>
  </div>`;
}

function whyHeld(ctx: PageContext, deps: ConsoleDeps, meta: QuarantineMetadata): Html {
  const reasons = explainSymbols(
    holdingFindings(deps.policy(), meta.findings).map((f) => f.symbol),
    ctx.lang,
  );
  return html`<h2>${ctx.t('rpWhy')}</h2>
    <ul class="why">
      ${reasons.map((r) => html`<li>${r}</li>`)}
    </ul>`;
}

/** The buttons the recipient's right allows, or why there are none. */
function actions(ctx: PageContext, link: Ok, token: string): Html {
  const { t } = ctx;
  const { access, meta, recipient } = link;
  const asked = pendingRequests(meta).find((p) => p.recipient.toLowerCase() === recipient.toLowerCase());
  const declined = declinedRequest(meta, recipient);
  let body: Html;
  if (!access.actionable) {
    const key: MessageKey = access.reason === 'released' ? 'rpReleased' : access.reason === 'deleted' ? 'rpDeleted' : 'rpReleasePending';
    body = html`<p class="muted">${t(key)}</p>`;
  } else if (asked) {
    body = html`<p class="muted">${t('rpRequested', { time: formatTime(Date.parse(asked.at), ctx.lang) })}</p>`;
  } else if (declined && access.right !== 'release') {
    body = html`<p class="warn declined">${t('rpDeclined', { time: formatTime(Date.parse(declined.at), ctx.lang) })}</p>
      ${declined.reason ? html`<p class="declined-reason">${t('rpDeclinedReason', { reason: declined.reason })}</p>` : ''}`;
  } else if (access.right === 'release') {
    body = html`<form method="post" action="/r/${token}/release" class="actions card">
      ${csrfField(ctx)}
      <button type="submit" class="primary">${t('rpReleaseButton')}</button>
    </form>`;
  } else if (access.right === 'request') {
    body = html`<form method="post" action="/r/${token}/request" class="actions card request">
      ${csrfField(ctx)}
      <label>${t('rpNoteLabel')}<textarea name="note" rows="3" maxlength="${NOTE_MAX}"></textarea></label>
      <button type="submit" class="primary">${t('rpRequestButton')}</button>
    </form>`;
  } else {
    body = html`<p class="warn">${t('rpNone')}</p>`;
  }
  return html`<h2>${t('rpWhatNow')}</h2>
    ${body}`;
}

async function linkPage(deps: ConsoleDeps, request: LinkRequest, reply: FastifyReply) {
  const opened = await openLink(deps, request, reply);
  if (!opened) return reply;
  const { link, ctx } = opened;
  const { t } = ctx;
  const { meta, recipient } = link;
  const raw = meta.state === 'deleted' ? undefined : await deps.store.readMessage(meta.id).catch(() => undefined);
  let previewPart: Html;
  let attachmentsPart: Html;
  if (!raw) {
    previewPart = attachmentsPart = html`<p class="muted">${t('iPreviewGone')}</p>`;
  } else {
    try {
      const preview = await buildPreview(raw);
      previewPart = renderPreview(preview, t);
      attachmentsPart = renderAttachments(preview, t);
    } catch (err) {
      previewPart = attachmentsPart = html`<p class="error">${t('iPreviewUnreadable', { message: (err as Error).message })}</p>`;
    }
  }
  const body = html`<p>${t('rpIntro', { recipient })}</p>
    ${summary(ctx, meta, recipient)} ${whyHeld(ctx, deps, meta)} ${actions(ctx, link, request.params.token)}
    <h2>${t('iAttachments')}</h2>
    ${attachmentsPart}
    <h2>${t('iPreview')}</h2>
    ${previewPart}`;
  return sendPage(reply, page(ctx, meta.headers?.subject || t('rpTitle'), body));
}

/** The first POST: what will happen, changing nothing; the form repeats itself with confirm=yes. */
function confirmPage(ctx: PageContext, deps: ConsoleDeps, link: Ok, token: string, action: 'release' | 'request', note: string, reply: FastifyReply) {
  const { t } = ctx;
  const { meta, recipient } = link;
  const body = html`${summary(ctx, meta, recipient)}
    <form method="post" action="/r/${token}/${action}" class="card">
      ${csrfField(ctx)}<input type="hidden" name="confirm" value="yes" />
      <p>${t(action === 'release' ? 'rpConfirmRelease' : 'rpConfirmRequest', { recipient })}</p>
      ${action === 'request' ? html`<label>${t('rpNoteLabel')}<textarea name="note" rows="3" maxlength="${NOTE_MAX}">${multiline(note)}</textarea></label>` : ''}
      <div class="actions">
        <button type="submit" class="primary">${t(action === 'release' ? 'rpConfirmReleaseButton' : 'rpConfirmRequestButton')}</button>
        <a class="button" href="/r/${token}">${t('rpCancel')}</a>
      </div>
    </form>`;
  return sendPage(reply, page(ctx, t(action === 'release' ? 'rpConfirmReleaseTitle' : 'rpConfirmRequestTitle'), body));
}

const REFUSAL: Record<RecipientActionError['kind'], { status: number; key: MessageKey }> = {
  'not-recipient': { status: 404, key: 'rpGone' },
  'not-allowed': { status: 403, key: 'rpNotAllowed' },
  'not-held': { status: 409, key: 'rpNotHeld' },
  'already-requested': { status: 409, key: 'rpAlreadyRequested' },
  declined: { status: 409, key: 'rpDeclinedRefused' },
  'rate-limited': { status: 429, key: 'rpLimited' },
  unavailable: { status: 503, key: 'rpUnavailable' },
};

async function act(deps: ConsoleDeps, backend: StateBackend, action: 'release' | 'request', request: LinkRequest, reply: FastifyReply) {
  const opened = await openLink(deps, request, reply);
  if (!opened) return reply;
  const { link, key, ctx } = opened;
  const { t } = ctx;
  const { token } = request.params;
  const form = request.body ?? {};
  if (!csrfMatches(key, token, form._csrf)) {
    request.log.warn(
      { event: 'console_csrf_refused', recipient: link.recipient, path: `/r/…/${action}` },
      'console: a recipient POST without a valid CSRF token',
    );
    return sendPage(reply.code(403), page(ctx, t('forbidden'), html`<p class="error">${t('rpCsrf')}</p>`));
  }
  const note = typeof form.note === 'string' ? form.note.slice(0, NOTE_MAX) : '';
  if (form.confirm !== 'yes') return confirmPage(ctx, deps, link, token, action, note, reply);
  const { meta, recipient } = link;
  const rctx: RecipientContext = { store: deps.store, policy: deps.policy(), state: backend, log: deps.log };
  const back = html`<p><a href="/r/${token}">${t('rpBack')}</a></p>`;
  try {
    if (action === 'request') {
      await requestRelease(rctx, meta.id, recipient, note.trim() ? { note } : {});
      return await sendPage(
        reply,
        page(
          ctx,
          t('rpRequestedTitle'),
          html`<p class="ok">${t('rpRequestedDone')}</p>
            ${back}`,
        ),
      );
    }
    const result = await releaseOwnCopy(rctx, meta.id, recipient);
    if (result.status === 'released')
      return await sendPage(
        reply,
        page(
          ctx,
          t('rpDoneTitle'),
          html`<p class="ok">${t('rpDone', { recipient })}</p>
            ${back}`,
        ),
      );
    const detail = [...result.recipients.map((r) => formatReply(r.reply)), result.reason].filter(Boolean).join('; ');
    return await sendPage(
      reply.code(502),
      page(
        ctx,
        t('rpNotDeliveredTitle'),
        html`<p class="error">${t('rpNotDelivered', { detail })}</p>
          ${back}`,
      ),
    );
  } catch (err) {
    if (!(err instanceof RecipientActionError)) throw err;
    const refusal = REFUSAL[err.kind];
    request.log.info({ event: 'recipient_action_refused', id: meta.id, recipient, action, kind: err.kind }, `console: ${err.message}`);
    if (err.kind === 'rate-limited') reply.header('retry-after', Math.ceil((err.retryInMs ?? 60_000) / 1000));
    const minutes = Math.max(1, Math.ceil((err.retryInMs ?? 60_000) / 60_000));
    return await sendPage(
      reply.code(refusal.status),
      page(
        ctx,
        t('rpTitle'),
        html`<p class="error">${t(refusal.key, { minutes })}</p>
          ${back}`,
      ),
    );
  } finally {
    deps.catalog.invalidate(meta.id);
  }
}

export async function recipientRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  // requests and own releases are counted where the gateway counts (ConsoleState.backend)
  const backend: StateBackend = deps.state.backend ?? { kind: 'memory' };
  app.get('/r/:token', (request: LinkRequest, reply) => linkPage(deps, request, reply));
  app.post('/r/:token/release', (request: LinkRequest, reply) => act(deps, backend, 'release', request, reply));
  app.post('/r/:token/request', (request: LinkRequest, reply) => act(deps, backend, 'request', request, reply));
}
