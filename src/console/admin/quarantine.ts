// The quarantine pages: the list (filters, paging over the catalog), one item (envelope, headers,
// findings with their place in the message, attachments, the safe preview, history), and the actions.
// Release and delete go through src/quarantine/release.ts, the code `mailmoat quarantine` runs: the
// item's lock, once only, its history and the audit log, with the signed-in user as the operator.
// Every action is two POSTs: the first shows what will happen and changes nothing, the second (with
// confirm=yes) does it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseHeaderBlock } from '../../message/parsed.js';
import { parseSince, type ListFilter } from '../../quarantine/query.js';
import { deleteItem, release, releasePolicy, type ReleaseResult } from '../../quarantine/release.js';
import { declineRequest, pendingRequests } from '../../quarantine/requests.js';
import { currentTrust, trustSender, untrustSender, type TrustedServers } from '../../quarantine/trust.js';
import { infrastructureTokens } from '../../inspect/spoof/infrastructure.js';
import { threadMemoryFor } from '../../state/thread-memory.js';
import { checkId, QuarantineError, QUARANTINE_ID, type QuarantineMetadata, type QuarantineState } from '../../quarantine/store.js';
import { formatReply } from '../../relay/smtp-client.js';
import { formatBytes, formatTime, type MessageKey, type Translate } from '../i18n.js';
import { csrfField, html, page, type Html, type PageContext } from '../layout.js';
import { buildPreview, renderAttachments, renderPreview } from '../preview.js';
import { pageContext, sendPage } from '../respond.js';
import type { ConsoleDeps } from '../server.js';

const PAGE_SIZE = 50;
/** Items one bulk action may name (a filter matching more must be narrowed). */
export const MAX_BULK = 500;
const STATES: QuarantineState[] = ['held', 'released', 'deleted'];

interface ListQuery {
  since?: string;
  until?: string;
  symbol?: string;
  sender?: string;
  recipient?: string;
  state?: string;
  /** `pending`: only items with a recipient's release request not yet answered */
  requests?: string;
  before?: string;
  after?: string;
}

type Form = Record<string, string | string[] | undefined>;

function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function one(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

class FilterError extends Error {
  readonly statusCode = 400;
  constructor(
    readonly field: MessageKey,
    message: string,
  ) {
    super(message);
  }
}

/** The filter of the list page (and of a bulk action on everything it matches); held by default. */
export function filterFrom(q: ListQuery): ListFilter {
  const filter: ListFilter = {};
  const since = q.since?.trim();
  if (since) {
    const at = parseSince(since);
    if (at === undefined) throw new FilterError('qFilterSince', 'expected 30m, 12h, 2d, 1w or a date such as 2024-05-01');
    filter.since = at;
  }
  const until = q.until?.trim();
  if (until) {
    const at = /^\d{4}-\d{2}-\d{2}/.test(until) ? Date.parse(until) : NaN;
    if (!Number.isFinite(at)) throw new FilterError('qFilterUntil', 'expected a date such as 2024-05-01 or 2024-05-01T12:00');
    filter.until = at;
  }
  const symbols = (q.symbol ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  if (symbols.length) filter.symbols = symbols;
  if (q.sender?.trim()) filter.sender = q.sender.trim();
  if (q.recipient?.trim()) filter.recipient = q.recipient.trim();
  const state = q.state ?? 'held';
  if (state !== 'all') {
    if (!STATES.includes(state as QuarantineState)) throw new FilterError('qFilterState', 'held, released, deleted or all');
    filter.states = [state as QuarantineState];
  }
  if (q.requests === 'pending') filter.requested = true;
  return filter;
}

const FILTER_KEYS = ['since', 'until', 'symbol', 'sender', 'recipient', 'state', 'requests'] as const;

function filterQuery(q: ListQuery, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) if (q[key]) params.set(key, q[key]);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const text = params.toString();
  return text ? `?${text}` : '';
}

function stateLabel(meta: QuarantineMetadata, t: Translate): Html {
  const key: MessageKey = meta.pendingRelease
    ? 'stateUnknown'
    : meta.state === 'held'
      ? 'stateHeld'
      : meta.state === 'released'
        ? 'stateReleased'
        : 'stateDeleted';
  return html`<span class="state-${meta.state}">${t(key)}</span>`;
}

function symbolsOf(meta: QuarantineMetadata): string[] {
  return [...new Set(meta.findings.filter((f) => !f.excepted).map((f) => f.symbol))];
}

function recipientsText(meta: QuarantineMetadata): string {
  const [first = ''] = meta.envelope.rcptTo;
  return meta.envelope.rcptTo.length > 1 ? `${first} +${meta.envelope.rcptTo.length - 1}` : first;
}

/** `invoice.zip > invoice.docm > word/vbaProject.bin` with the separators drawn, each name as text. */
function partPath(part: string | undefined, t: Translate): Html {
  if (!part) return html`<span class="muted">${t('iWholeMessage')}</span>`;
  const names = part.split(/\s*>\s*/);
  return html`<span class="path">${names.map((n, i) => html`${i ? html`<span class="sep">›</span>` : ''}${n}`)}</span>`;
}

async function listPage(deps: ConsoleDeps, request: FastifyRequest<{ Querystring: ListQuery }>, reply: FastifyReply) {
  const ctx = pageContext(request, reply);
  const { t } = ctx;
  const q = request.query;
  let filter: ListFilter;
  try {
    filter = filterFrom(q);
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    return sendPage(
      reply.code(400),
      page(
        ctx,
        t('qTitle'),
        html`${filterForm(ctx, q)}
          <p class="error">${t('qBadFilter', { field: t(err.field), message: err.message })}</p>`,
        'quarantine',
      ),
    );
  }
  const before = q.before && QUARANTINE_ID.test(q.before) ? q.before : undefined;
  const after = q.after && QUARANTINE_ID.test(q.after) ? q.after : undefined;
  const result = await deps.catalog.page(filter, { ...(before ? { before } : {}), ...(after ? { after } : {}), limit: PAGE_SIZE });
  const admin = ctx.user?.role === 'admin';
  const rows = result.items.map(
    (m) =>
      html`<tr>
        ${admin ? html`<td><input type="checkbox" name="id" value="${m.id}" aria-label="${m.id}" /></td>` : ''}
        <td class="nowrap"><a href="/quarantine/${m.id}">${formatTime(m.receivedAt)}</a></td>
        <td class="nowrap">${stateLabel(m, t)}${pendingRequests(m).length ? html`<br /><span class="requested">${t('qRequested')}</span>` : ''}</td>
        <td class="addr">${m.envelope.mailFrom || '<>'}</td>
        <td class="addr">${recipientsText(m)}</td>
        <td>${symbolsOf(m).map((s) => html`<span class="sym">${s}</span>`)}</td>
        <td class="subject"><a href="/quarantine/${m.id}">${m.headers?.subject || '—'}</a></td>
        <td class="nowrap">${m.verdict.score}</td>
      </tr>`,
  );
  const pager = html`<div class="pager">
    ${result.newer ? html`<a href="/quarantine${filterQuery(q)}">${t('qNewest')}</a> <a href="/quarantine${filterQuery(q, { after: result.newer })}">${t('qNewer')}</a>` : ''}
    ${result.older ? html`<a href="/quarantine${filterQuery(q, { before: result.older })}">${t('qOlder')}</a>` : ''}
  </div>`;
  const hidden = html`${FILTER_KEYS.map((k) => (q[k] ? html`<input type="hidden" name="f_${k}" value="${q[k]}" />` : ''))}`;
  const bulkMatching = admin && (filter.states === undefined || filter.states.includes('held')) && result.total > 0;
  const body = html`${filterForm(ctx, q)}
    <p>
      ${t('qMatches', { count: result.total })}${result.problems.length ? html` · <span class="error">${t('qProblems', { count: result.problems.length })}</span>` : ''}
    </p>
    ${result.problems.slice(0, 5).map((p) => html`<p class="error mono">${p.message}</p>`)}
    <form method="post" action="/quarantine/confirm">
      ${csrfField(ctx)}${hidden}
      ${
        result.items.length
          ? html`<div class="scroll">
              <table class="items">
                <thead>
                  <tr>
                    ${admin ? html`<th></th>` : ''}
                    <th>${t('qColReceived')}</th>
                    <th>${t('qColState')}</th>
                    <th>${t('qColSender')}</th>
                    <th>${t('qColRecipients')}</th>
                    <th>${t('qColSymbols')}</th>
                    <th>${t('qColSubject')}</th>
                    <th>${t('qColScore')}</th>
                  </tr>
                </thead>
                <tbody>
                  ${rows}
                </tbody>
              </table>
            </div>`
          : html`<p class="muted">${t('qNone')}</p>`
      }
      ${pager}
      ${
        admin && result.items.length
          ? html`<div class="actions">
              ${t('qSelected')}
              <button type="submit" name="action" value="release">${t('qReleaseSelected')}</button>
              <button type="submit" name="action" value="delete" class="danger">${t('qDeleteSelected')}</button>
            </div>`
          : ''
      }
      ${
        bulkMatching
          ? html`<div class="actions">
              ${t('qAllMatching')}
              <button type="submit" name="action" value="release-matching">${t('qReleaseAll', { count: result.total })}</button>
              <button type="submit" name="action" value="delete-matching" class="danger">${t('qDeleteAll', { count: result.total })}</button>
            </div>`
          : ''
      }
    </form>`;
  return sendPage(reply, page(ctx, t('qTitle'), body, 'quarantine'));
}

function filterForm(ctx: PageContext, q: ListQuery): Html {
  const { t } = ctx;
  const state = q.state ?? 'held';
  const option = (value: string, label: string, current: string) =>
    html`<option value="${value}" ${current === value ? html` selected` : ''}>${label}</option>`;
  return html`<form method="get" action="/quarantine" class="filters">
    <label
      >${t('qFilterSince')}<select name="since">
        ${option('', t('qAny'), q.since ?? '')}${['1h', '24h', '7d', '30d'].map((v) => option(v, v, q.since ?? ''))}
        ${q.since && !['1h', '24h', '7d', '30d'].includes(q.since) ? option(q.since, q.since, q.since) : ''}
      </select></label
    >
    <label>${t('qFilterUntil')}<input name="until" value="${q.until ?? ''}" placeholder="2024-05-01" size="11" /></label>
    <label>${t('qFilterSymbol')}<input name="symbol" value="${q.symbol ?? ''}" placeholder="OFFICE_MACRO" size="18" /></label>
    <label>${t('qFilterSender')}<input name="sender" value="${q.sender ?? ''}" placeholder="@example.com" size="18" /></label>
    <label>${t('qFilterRecipient')}<input name="recipient" value="${q.recipient ?? ''}" size="18" /></label>
    <label
      >${t('qFilterState')}<select name="state">
        ${option('held', t('stateHeld'), state)}${option('released', t('stateReleased'), state)}${option('deleted', t('stateDeleted'), state)}${option('all', t('qAll'), state)}
      </select></label
    >
    <label
      >${t('qFilterRequests')}<select name="requests">
        ${option('', t('qAny'), q.requests ?? '')}${option('pending', t('qRequestsPending'), q.requests ?? '')}
      </select></label
    >
    <button type="submit" class="primary">${t('qFilterApply')}</button>
    <a class="button" href="/quarantine">${t('qFilterReset')}</a>
  </form>`;
}

async function itemPage(deps: ConsoleDeps, request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
  const ctx = pageContext(request, reply);
  const { t } = ctx;
  const meta = await deps.store.get(checkId(request.params.id));
  const raw = meta.state === 'deleted' ? undefined : await deps.store.readMessage(meta.id).catch(() => undefined);
  let previewPart: Html;
  let attachmentsPart: Html;
  let headers: { name: string; value: string; raw?: string }[] = [];
  if (!raw) {
    previewPart = html`<p class="muted">${t('iPreviewGone')}</p>`;
    attachmentsPart = previewPart;
  } else {
    const head = raw.subarray(0, 256 * 1024).toString('utf8');
    const end = head.search(/\r?\n\r?\n/);
    headers = parseHeaderBlock(end === -1 ? head : head.slice(0, end));
    try {
      const preview = await buildPreview(raw);
      previewPart = renderPreview(preview, t);
      attachmentsPart = renderAttachments(preview, t);
    } catch (err) {
      previewPart = html`<p class="error">${t('iPreviewUnreadable', { message: (err as Error).message })}</p>`;
      attachmentsPart = previewPart;
    }
  }
  const admin = ctx.user?.role === 'admin';
  const findings = meta.findings.map(
    (f) =>
      html`<tr>
        <td><span class="sym">${f.symbol}</span>${f.excepted ? html`<br /><span class="muted">${t('iExcepted', { why: f.excepted })}</span>` : ''}</td>
        <td class="nowrap">${f.score}</td>
        <td>${partPath(f.part, t)}</td>
        <td>${f.detail ?? ''}</td>
        <td class="mono">${f.sha256 ?? ''}</td>
      </tr>`,
  );
  const body = html` ${meta.pendingRelease ? html`<p class="warn">${t('iPending', { id: meta.id })}</p>` : ''}
    <div class="card">
      <dl class="kv">
        <dt>ID</dt>
        <dd class="mono">${meta.id}</dd>
        <dt>${t('qColState')}</dt>
        <dd>${stateLabel(meta, t)}</dd>
        <dt>${t('qColReceived')}</dt>
        <dd>${formatTime(meta.receivedAt)}</dd>
        <dt>${t('qColSubject')}</dt>
        <dd>${meta.headers?.subject ?? '—'}</dd>
        <dt>From</dt>
        <dd>${meta.headers?.from ?? '—'}</dd>
        <dt>${t('iClient')}</dt>
        <dd class="mono">${meta.client.address} (HELO ${meta.client.helo})</dd>
        <dt>${t('iMailFrom')}</dt>
        <dd class="mono">${meta.envelope.mailLine}</dd>
        <dt>${t('iRcptTo')}</dt>
        <dd class="mono">${meta.envelope.rcptLines.map((l, i) => html`${i ? html`<br />` : ''}${l}`)}</dd>
        <dt>${t('iSize')}</dt>
        <dd>${formatBytes(meta.size)}</dd>
        <dt>SHA-256</dt>
        <dd class="mono">${meta.sha256}</dd>
        <dt>${t('iVerdict')}</dt>
        <dd>${meta.verdict.action}, score ${meta.verdict.score}: ${meta.verdict.reason}</dd>
        <dt>${t('iPolicy')}</dt>
        <dd class="mono">${meta.policyVersion}</dd>
      </dl>
    </div>
    ${admin && meta.state !== 'deleted' ? actionForm(ctx, meta) : ''} ${admin && deps.state.sharesThreadMemory ? untrustForm(ctx, meta) : ''}
    ${requestsPart(ctx, meta, admin)}
    <h2>${t('iFindings')}</h2>
    <div class="scroll">
      <table class="findings">
        <thead>
          <tr>
            <th>${t('qColSymbols')}</th>
            <th>${t('qColScore')}</th>
            <th>${t('iPart')}</th>
            <th>${t('iDetail')}</th>
            <th>${t('iHash')}</th>
          </tr>
        </thead>
        <tbody>
          ${findings}
        </tbody>
      </table>
    </div>
    <h2>${t('iAttachments')}</h2>
    ${attachmentsPart}
    <h2>${t('iPreview')}</h2>
    ${previewPart}
    <h2>${t('iHeaders')}</h2>
    <div class="card mono headers">${headers.map((h) => html`<div><b>${h.name}</b>: ${h.raw ?? h.value}</div>`)}</div>
    <h2>${t('iHistory')}</h2>
    <div class="scroll">
      <table class="history">
        <tbody>
          ${meta.history.map(
            (h) =>
              html`<tr>
                <td class="nowrap">${formatTime(h.at)}</td>
                <td>${h.event}</td>
                <td>${h.by}${h.host ? ` @ ${h.host}` : ''}</td>
                <td class="addr">${(h.recipients ?? []).join(', ')}</td>
                <td class="mono">${h.detail ?? ''}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
  return sendPage(reply, page(ctx, meta.headers?.subject || meta.id, body, 'quarantine'));
}

function actionForm(ctx: PageContext, meta: QuarantineMetadata): Html {
  const { t } = ctx;
  return html`<form method="post" action="/quarantine/confirm" class="actions card">
    ${csrfField(ctx)}<input type="hidden" name="id" value="${meta.id}" />
    <strong>${t('iActions')}:</strong>
    <button type="submit" name="action" value="release" class="primary">${t('iRelease')}</button>
    <button type="submit" name="action" value="delete" class="danger">${t('iDelete')}</button>
  </form>`;
}

/** While the sender is trusted through this item (release and trust): a button to take it back. */
function untrustForm(ctx: PageContext, meta: QuarantineMetadata): Html {
  const { t } = ctx;
  const trusted = currentTrust(meta);
  if (!trusted) return html``;
  return html`<form method="post" action="/quarantine/untrust" class="untrust card">
    ${csrfField(ctx)}<input type="hidden" name="id" value="${meta.id}" />
    <span>${t('iTrustedNow', { sender: trusted.address, tokens: trusted.tokens.join(', ') })}</span>
    <button type="submit" class="danger">${t('iUntrust')}</button>
  </form>`;
}

/** A results row's detail for a trust: "sender, organisation: tokens". */
function trustDetail(t: TrustedServers): string {
  return `${t.address}${t.domain ? `, ${t.domain}` : ''}: ${t.tokens.join(', ')}`;
}

/** Takes back a trust given through one item (trust.ts untrustSender). */
async function untrust(deps: ConsoleDeps, request: FastifyRequest<{ Body: Form }>, reply: FastifyReply) {
  const ctx = pageContext(request, reply);
  const id = one((request.body ?? {}).id);
  const operator = request.user!.name;
  let outcome: Outcome;
  try {
    const policy = deps.policy();
    if (!deps.state.sharesThreadMemory || !deps.state.backend) throw new QuarantineError("this console does not share the gateways' thread memory", 'usage');
    const r = await untrustSender(deps.store, checkId(id), threadMemoryFor(deps.state.backend, policy.spoof.keyPrefix), operator);
    outcome = { id, ok: true, label: 'rUntrusted', detail: trustDetail(r) };
  } catch (err) {
    if (!(err instanceof QuarantineError)) throw err;
    outcome = { id, ok: false, label: 'rRefused', detail: err.message };
  }
  request.log.info({ event: 'console_action', user: operator, action: 'untrust', ids: 1, ok: outcome.ok ? 1 : 0 }, `console: ${operator} untrust 1 item(s)`);
  return resultsPage(ctx, reply, [outcome]);
}

/** Recipients' release requests not yet answered (requests.ts), each with an Approve button for admins. */
function requestsPart(ctx: PageContext, meta: QuarantineMetadata, admin: boolean): Html {
  const { t } = ctx;
  const pending = pendingRequests(meta);
  if (!pending.length) return html``;
  return html`<h2>${t('iRequests')}</h2>
    <div class="scroll">
      <table class="requests">
        <thead>
          <tr>
            <th>${t('qColRecipients')}</th>
            <th>${t('qColReceived')}</th>
            <th>${t('iRequestNote')}</th>
            ${admin ? html`<th></th>` : ''}
          </tr>
        </thead>
        <tbody>
          ${pending.map(
            (p) =>
              html`<tr>
                <td class="addr">${p.recipient}</td>
                <td class="nowrap">${formatTime(p.at)}</td>
                <td>${p.note ?? ''}</td>
                ${
                  admin
                    ? html`<td>
                        <form method="post" action="/quarantine/confirm" class="inline">
                          ${csrfField(ctx)}<input type="hidden" name="id" value="${meta.id}" /><input type="hidden" name="rcpt" value="${p.recipient}" />
                          <input type="hidden" name="approve" value="yes" />
                          <button type="submit" name="action" value="release" class="primary">${t('iApprove', { recipient: p.recipient })}</button>
                        </form>
                        <form method="post" action="/quarantine/decline" class="inline decline">
                          ${csrfField(ctx)}<input type="hidden" name="id" value="${meta.id}" /><input type="hidden" name="rcpt" value="${p.recipient}" />
                          <input
                            type="text"
                            name="reason"
                            maxlength="500"
                            placeholder="${t('iDeclineReason', { recipient: p.recipient })}"
                            aria-label="${t('iDeclineReason', { recipient: p.recipient })}"
                          />
                          <button type="submit" class="danger">${t('iDecline')}</button>
                        </form>
                      </td>`
                    : ''
                }
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
}

type ActionName = 'release' | 'delete';

/** The ids an action names: those ticked, or every held item the carried filter matches (no release pending). */
async function chosenIds(deps: ConsoleDeps, form: Form): Promise<{ action: ActionName; ids: string[]; tooMany: boolean }> {
  const asked = one(form.action);
  const matching = asked.endsWith('-matching');
  const action = asked.replace(/-matching$/, '');
  if (action !== 'release' && action !== 'delete') throw Object.assign(new Error(`unknown action ${JSON.stringify(asked)}`), { statusCode: 400 });
  let ids: string[];
  if (matching) {
    const q: ListQuery = {};
    for (const k of ['since', 'until', 'symbol', 'sender', 'recipient', 'requests'] as const) {
      const v = one(form[`f_${k}`]);
      if (v) q[k] = v;
    }
    const filter = { ...filterFrom({ ...q, state: 'held' }) };
    ids = (await deps.catalog.select(filter)).ids;
  } else {
    ids = [...new Set(list(form.id))];
    for (const id of ids) checkId(id);
  }
  return { action, ids: ids.slice(0, MAX_BULK), tooMany: ids.length > MAX_BULK };
}

async function confirmPage(deps: ConsoleDeps, request: FastifyRequest<{ Body: Form }>, reply: FastifyReply) {
  const ctx = pageContext(request, reply);
  const { t } = ctx;
  const form = request.body ?? {};
  const { action, ids, tooMany } = await chosenIds(deps, form);
  if (!ids.length)
    return sendPage(
      reply,
      page(
        ctx,
        t('qTitle'),
        html`<p class="warn">${t('cNothing')}</p>
          <p><a href="/quarantine">${t('rBack')}</a></p>`,
      ),
    );
  if (tooMany) return sendPage(reply.code(400), page(ctx, t('qTitle'), html`<p class="error">${t('cTooMany', { max: MAX_BULK })}</p>`));
  const items: QuarantineMetadata[] = [];
  for (const id of ids) items.push(await deps.store.get(id));
  const policy = deps.policy();
  const target = releasePolicy(policy).downstream;
  const single = items.length === 1 ? items[0] : undefined;
  const needsForce = action === 'release' && items.some((m) => m.state === 'released' || m.pendingRelease);
  // one inbound message that kept the servers it came through, and a thread memory the gateways read
  const infrastructure = single?.observation?.infrastructure;
  const trustable =
    action === 'release' && single && infrastructure && deps.state.sharesThreadMemory && policy.spoof.enabled
      ? { sender: single.headers?.from ?? single.envelope.mailFrom, tokens: infrastructureTokens(infrastructure).join(', ') }
      : undefined;
  // from an Approve button: only the recipient who asked is ticked
  const chosen = new Set(list(form.rcpt).map((r) => r.toLowerCase()));
  const approve = one(form.approve) === 'yes';
  const body = html`<p>
      ${
        action === 'release'
          ? t('cReleaseExplain', { downstream: `${target.host}:${target.port}`, header: policy.quarantine.release.header ?? '—' })
          : t('cDeleteExplain')
      }
    </p>
    <form method="post" action="/quarantine/act" class="card">
      ${csrfField(ctx)}<input type="hidden" name="action" value="${action}" /><input type="hidden" name="confirm" value="yes" />
      ${approve ? html`<input type="hidden" name="approve" value="yes" />` : ''}
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th>${t('qColReceived')}</th>
              <th>${t('qColState')}</th>
              <th>${t('qColSender')}</th>
              <th>${t('qColRecipients')}</th>
              <th>${t('qColSubject')}</th>
            </tr>
          </thead>
          <tbody>
            ${items.map(
              (m) =>
                html`<tr>
                  <td class="nowrap"><input type="hidden" name="id" value="${m.id}" />${formatTime(m.receivedAt)}</td>
                  <td>${stateLabel(m, t)}</td>
                  <td class="addr">${m.envelope.mailFrom || '<>'}</td>
                  <td class="addr">${recipientsText(m)}</td>
                  <td class="subject">${m.headers?.subject ?? '—'}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${
        single && action === 'release'
          ? html`<fieldset>
              <legend>${t('iReleaseTo')}</legend>
              ${single.envelope.rcptTo.map(
                (r) =>
                  html`<label class="inline-check"
                      ><span
                        ><input type="checkbox" name="rcpt" value="${r}" ${!chosen.size || chosen.has(r.toLowerCase()) ? html`checked` : ''} /> ${r}</span
                      ></label
                    ><br />`,
              )}
            </fieldset>`
          : ''
      }
      ${
        trustable
          ? html`<p>
              <label class="inline-check"
                ><span><input type="checkbox" name="trust" value="yes" /> ${t('iTrust', { sender: trustable.sender, tokens: trustable.tokens })}</span></label
              >
            </p>`
          : ''
      }
      ${
        needsForce
          ? html`<p>
              <label class="inline-check"
                ><span><input type="checkbox" name="force" value="yes" /> ${t('iForce')}</span></label
              >
            </p>`
          : ''
      }
      <div class="actions">
        <button type="submit" class="${action === 'release' ? 'primary' : 'danger'}">${t(action === 'release' ? 'cConfirmRelease' : 'cConfirmDelete')}</button>
        <a class="button" href="${single ? `/quarantine/${single.id}` : '/quarantine'}">${t('cCancel')}</a>
      </div>
    </form>`;
  return sendPage(reply, page(ctx, t(action === 'release' ? 'cTitleRelease' : 'cTitleDelete'), body, 'quarantine'));
}

interface Outcome {
  id: string;
  ok: boolean;
  label: MessageKey;
  detail: string;
}

function describeRelease(result: ReleaseResult): Outcome {
  const label: MessageKey = { released: 'rReleased', partial: 'rPartial', failed: 'rFailed', unknown: 'rUnknown' }[result.status] as MessageKey;
  const replies = result.recipients.map((r) => `${r.rcpt}: ${formatReply(r.reply)}`);
  return { id: result.id, ok: result.status === 'released', label, detail: [...replies, result.reason, result.recordError ?? ''].filter(Boolean).join('; ') };
}

async function act(deps: ConsoleDeps, request: FastifyRequest<{ Body: Form }>, reply: FastifyReply) {
  const form = request.body ?? {};
  if (one(form.confirm) !== 'yes') return confirmPage(deps, request, reply);
  const ctx = pageContext(request, reply);
  const { t } = ctx;
  const { action, ids, tooMany } = await chosenIds(deps, form);
  if (tooMany) return sendPage(reply.code(400), page(ctx, t('qTitle'), html`<p class="error">${t('cTooMany', { max: MAX_BULK })}</p>`));
  const operator = request.user!.name;
  const force = one(form.force) === 'yes';
  const to = list(form.rcpt);
  // trusting the sender is for one message, from a console that shares the gateways' thread memory
  const trust = one(form.trust) === 'yes' && action === 'release' && ids.length === 1 && !!deps.state.sharesThreadMemory && !!deps.state.backend;
  const outcomes: Outcome[] = [];
  for (const id of ids) {
    try {
      if (action === 'release') {
        const note = one(form.approve) === 'yes' ? `web console: approved the request of ${to.join(', ')}` : 'web console';
        const policy = deps.policy();
        const result = await release(deps.store, id, policy, { operator, force, note, ...(ids.length === 1 && to.length ? { to } : {}) });
        outcomes.push(describeRelease(result));
        if (trust && (result.status === 'released' || result.status === 'partial')) {
          const trusted = await trustSender(deps.store, id, policy, threadMemoryFor(deps.state.backend!, policy.spoof.keyPrefix), operator);
          outcomes.push({ id, ok: true, label: 'rTrusted', detail: trustDetail(trusted) });
        }
      } else {
        await deleteItem(deps.store, id, { operator, force, reason: 'web console' });
        outcomes.push({ id, ok: true, label: 'rDeleted', detail: '' });
      }
    } catch (err) {
      if (!(err instanceof QuarantineError)) throw err;
      outcomes.push({ id, ok: false, label: 'rRefused', detail: err.message });
    } finally {
      deps.catalog.invalidate(id);
    }
  }
  request.log.info(
    { event: 'console_action', user: operator, action, ids: ids.length, ok: outcomes.filter((o) => o.ok).length },
    `console: ${operator} ${action} ${ids.length} item(s)`,
  );
  return resultsPage(ctx, reply, outcomes);
}

/** What an action did, one row per item. */
function resultsPage(ctx: PageContext, reply: FastifyReply, outcomes: Outcome[]) {
  const { t } = ctx;
  const body = html`<div class="scroll">
      <table class="results">
        <tbody>
          ${outcomes.map(
            (o) =>
              html`<tr class="${o.ok ? 'ok' : 'error'}">
                <td class="mono"><a href="/quarantine/${o.id}">${o.id}</a></td>
                <td class="nowrap result">${t(o.label)}</td>
                <td class="mono">${o.detail}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <p><a href="/quarantine">${t('rBack')}</a></p>`;
  return sendPage(reply, page(ctx, t('rTitle'), body, 'quarantine'));
}

/** An admin declines a recipient's pending request: the message stays held and the recipient is told (requests.ts). */
async function decline(deps: ConsoleDeps, request: FastifyRequest<{ Body: Form }>, reply: FastifyReply) {
  const form = request.body ?? {};
  const ctx = pageContext(request, reply);
  const { t } = ctx;
  const id = one(form.id);
  const recipient = one(form.rcpt);
  const operator = request.user!.name;
  let outcome: Outcome;
  try {
    const reason = one(form.reason);
    const result = await declineRequest({ store: deps.store, policy: deps.policy(), log: deps.log }, checkId(id), recipient, {
      operator,
      ...(reason.trim() ? { reason } : {}),
    });
    const told = result.notified ? t('rDeclinedTold', { recipient }) : t('rDeclinedNotTold', { recipient, error: result.notifyError ?? '' });
    outcome = { id, ok: true, label: 'rDeclined', detail: `${recipient}: ${told}` };
  } catch (err) {
    if (!(err instanceof QuarantineError)) throw err;
    outcome = { id, ok: false, label: 'rRefused', detail: err.message };
  } finally {
    if (QUARANTINE_ID.test(id)) deps.catalog.invalidate(id);
  }
  request.log.info({ event: 'console_action', user: operator, action: 'decline', ids: 1, ok: outcome.ok ? 1 : 0 }, `console: ${operator} decline 1 item(s)`);
  return resultsPage(ctx, reply, [outcome]);
}

export async function quarantineRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  app.get('/quarantine', (request: FastifyRequest<{ Querystring: ListQuery }>, reply) => listPage(deps, request, reply));
  app.get('/quarantine/:id', async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
    if (!QUARANTINE_ID.test(request.params.id)) return reply.callNotFound();
    try {
      return await itemPage(deps, request, reply);
    } catch (err) {
      if (err instanceof QuarantineError && err.kind === 'not-found') return reply.callNotFound();
      throw err;
    }
  });
  app.post('/quarantine/confirm', (request: FastifyRequest<{ Body: Form }>, reply) => confirmPage(deps, request, reply));
  app.post('/quarantine/act', (request: FastifyRequest<{ Body: Form }>, reply) => act(deps, request, reply));
  app.post('/quarantine/decline', (request: FastifyRequest<{ Body: Form }>, reply) => decline(deps, request, reply));
  app.post('/quarantine/untrust', (request: FastifyRequest<{ Body: Form }>, reply) => untrust(deps, request, reply));
}
