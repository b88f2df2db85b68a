// Outbound senders: the top senders of a window by a metric, one sender's counters per window and
// baseline, and suspend / lift, through src/rate/admin.ts, the code `mailmoat sender` runs (state.ts
// says how it reaches the counters). Suspend and lift are confirmed POSTs like every action.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RATE_METRICS, type RateMetric } from '../../policy/schema.js';
import { AdminError, BY, type SubjectReport } from '../../rate/admin.js';
import { formatDuration } from '../../rate/plan.js';
import type { Translate } from '../i18n.js';
import { csrfField, html, page, type Html, type PageContext } from '../layout.js';
import { pageContext, sendPage } from '../respond.js';
import type { ConsoleDeps } from '../server.js';
import type { SenderAccess } from '../state.js';

const METRIC_BY_NAME = BY;
const NAME_OF: Record<RateMetric, string> = Object.fromEntries(Object.entries(BY).map(([n, m]) => [m, n])) as Record<RateMetric, string>;

function stateText(r: SubjectReport, t: Translate): Html {
  if (r.suspended) return html`<span class="state-held">${t('sSuspended', { by: r.suspended.by, since: r.suspended.since })}</span>`;
  if (r.hold) return html`<span class="state-held">${t('sHeld', { why: r.hold.split('|')[0] })}</span>`;
  return html`<span class="muted">${t('sActive')}</span>`;
}

/** The address part of a subject (`sender:alice@x` → alice@x), which is what suspend takes. */
function addrOf(subject: string): string {
  return subject.slice(subject.indexOf(':') + 1);
}

function unavailable(ctx: PageContext, reply: FastifyReply, why: string) {
  return sendPage(reply, page(ctx, ctx.t('sTitle'), html`<p class="warn">${ctx.t('sUnavailable', { why })}</p>`, 'senders'));
}

function access(deps: ConsoleDeps): SenderAccess | string {
  const senders = deps.state.senders;
  return 'unavailable' in senders ? senders.unavailable : senders;
}

export async function senderRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  app.get('/senders', async (request: FastifyRequest<{ Querystring: { window?: string; by?: string; limit?: string } }>, reply) => {
    const ctx = pageContext(request, reply);
    const { t } = ctx;
    const senders = access(deps);
    if (typeof senders === 'string') return unavailable(ctx, reply, senders);
    const policy = deps.policy();
    const windows = policy.rate.windows;
    const window = windows.includes(Number(request.query.window)) ? Number(request.query.window) : (windows.find((w) => w === 3_600_000) ?? windows[0]);
    const byName = request.query.by && Object.hasOwn(METRIC_BY_NAME, request.query.by) ? request.query.by : 'external-recipients';
    const by = METRIC_BY_NAME[byName];
    const limit = Math.min(200, Math.max(1, Number(request.query.limit) || 20));
    let rows: SubjectReport[] = [];
    let problem: string | undefined;
    try {
      rows = await senders.top(policy, window, by, limit);
    } catch (err) {
      problem = (err as Error).message;
    }
    const option = (value: string, label: string, current: string) =>
      html`<option value="${value}" ${value === current ? html` selected` : ''}>${label}</option>`;
    const body = html` ${policy.rate.enabled ? '' : html`<p class="warn">${t('sDisabled')}</p>`}
      <form method="get" action="/senders" class="filters">
        <label
          >${t('sWindow')}<select name="window">
            ${windows.map((w) => option(String(w), formatDuration(w), String(window)))}
          </select></label
        >
        <label
          >${t('sBy')}<select name="by">
            ${RATE_METRICS.map((m) => option(NAME_OF[m], t(`metric_${m}`), byName))}
          </select></label
        >
        <label>${t('sLimit')}<input name="limit" value="${limit}" size="4" inputmode="numeric" /></label>
        <button type="submit" class="primary">${t('sShow')}</button>
      </form>
      <form method="get" action="/senders/show" class="filters">
        <label>${t('sLookup')}<input name="addr" size="32" required /></label>
        <button type="submit">${t('sShow')}</button>
      </form>
      ${problem ? html`<p class="error">${problem}</p>` : ''}
      ${
        rows.length
          ? html`<div class="scroll">
              <table class="senders">
                <thead>
                  <tr>
                    <th>${t('sSender')}</th>
                    ${RATE_METRICS.map((m) => html`<th class="${m === by ? 'on' : ''}">${t(`metric_${m}`)}</th>`)}
                    <th>${t('sState')}</th>
                  </tr>
                </thead>
                <tbody>
                  ${rows.map((r) => {
                    const counts = r.windows.find((w) => w.window === window)?.counts;
                    return html`<tr>
                      <td class="addr"><a href="/senders/show?addr=${encodeURIComponent(addrOf(r.subject))}">${r.subject}</a></td>
                      ${RATE_METRICS.map((m) => html`<td>${counts?.[m] ?? 0}</td>`)}
                      <td>${stateText(r, t)}</td>
                    </tr>`;
                  })}
                </tbody>
              </table>
            </div>`
          : problem
            ? ''
            : html`<p class="muted">${t('sNone', { window: formatDuration(window) })}</p>`
      }`;
    return sendPage(reply, page(ctx, t('sTitle'), body, 'senders'));
  });

  app.get('/senders/show', async (request: FastifyRequest<{ Querystring: { addr?: string } }>, reply) => {
    const ctx = pageContext(request, reply);
    const { t } = ctx;
    const senders = access(deps);
    if (typeof senders === 'string') return unavailable(ctx, reply, senders);
    const addr = (request.query.addr ?? '').trim();
    let reports: SubjectReport[];
    try {
      reports = await senders.show(deps.policy(), addr);
    } catch (err) {
      if (!(err instanceof AdminError)) throw err;
      return sendPage(reply.code(400), page(ctx, t('sTitle'), html`<p class="error">${err.message}</p>`, 'senders'));
    }
    const admin = ctx.user?.role === 'admin';
    const anyHold = reports.some((r) => r.suspended || r.hold);
    const body = html`${reports.map(
        (r) =>
          html`<section class="card">
            <h2 class="mono">${r.subject}</h2>
            <p>${stateText(r, t)}${r.suspended?.detail ? html`: ${r.suspended.detail}` : ''}</p>
            <p>${t('sBaseline', { current: r.baseline.current, average: r.baseline.average })}</p>
            <div class="scroll">
              <table>
                <thead>
                  <tr>
                    <th>${t('sWindow')}</th>
                    ${RATE_METRICS.map((m) => html`<th>${t(`metric_${m}`)}</th>`)}
                  </tr>
                </thead>
                <tbody>
                  ${r.windows.map(
                    (w) =>
                      html`<tr>
                        <td>${formatDuration(w.window)}</td>
                        ${RATE_METRICS.map((m) => html`<td>${w.counts[m]}</td>`)}
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>
          </section>`,
      )}
      ${
        admin
          ? html`<form method="post" action="/senders/confirm" class="actions card">
              ${csrfField(ctx)}<input type="hidden" name="addr" value="${addr}" />
              <button type="submit" name="action" value="suspend" class="danger">${t('sSuspend')}</button>
              ${anyHold ? html`<button type="submit" name="action" value="unsuspend">${t('sUnsuspend')}</button>` : ''}
            </form>`
          : ''
      }
      <p><a href="/senders">${t('sTitle')}</a></p>`;
    return sendPage(reply, page(ctx, addr, body, 'senders'));
  });

  app.post('/senders/confirm', async (request: FastifyRequest<{ Body: { addr?: string; action?: string } }>, reply) => {
    const ctx = pageContext(request, reply);
    const { t } = ctx;
    const addr = String(request.body?.addr ?? '').trim();
    const action = request.body?.action === 'unsuspend' ? 'unsuspend' : 'suspend';
    const body = html`<form method="post" action="/senders/act" class="card">
      ${csrfField(ctx)} <input type="hidden" name="addr" value="${addr}" /><input type="hidden" name="action" value="${action}" /><input
        type="hidden"
        name="confirm"
        value="yes"
      />
      <p>${t(action === 'suspend' ? 'sConfirmSuspend' : 'sConfirmUnsuspend', { addr })}</p>
      ${
        action === 'suspend'
          ? html`<p>
              <label>${t('sReason')}<input name="reason" size="48" maxlength="200" /></label>
            </p>`
          : ''
      }
      <div class="actions">
        <button type="submit" class="${action === 'suspend' ? 'danger' : 'primary'}">
          ${t(action === 'suspend' ? 'sSuspend' : 'sUnsuspend').replace('…', '')}
        </button>
        <a class="button" href="/senders/show?addr=${encodeURIComponent(addr)}">${t('cCancel')}</a>
      </div>
    </form>`;
    return sendPage(reply, page(ctx, addr, body, 'senders'));
  });

  app.post('/senders/act', async (request: FastifyRequest<{ Body: { addr?: string; action?: string; reason?: string; confirm?: string } }>, reply) => {
    if (request.body?.confirm !== 'yes') return reply.redirect('/senders', 303);
    const ctx = pageContext(request, reply);
    const { t } = ctx;
    const senders = access(deps);
    if (typeof senders === 'string') return unavailable(ctx, reply, senders);
    const addr = String(request.body.addr ?? '').trim();
    const operator = request.user!.name;
    let message: Html;
    try {
      if (request.body.action === 'unsuspend') {
        const lifted = await senders.unsuspend(deps.policy(), addr);
        message = lifted.length
          ? html`<p class="ok">${t('sDone', { what: lifted.join(', ') })}</p>`
          : html`<p class="warn">${t('sNothingLifted', { addr })}</p>`;
      } else {
        const reason = `${operator}: ${String(request.body.reason ?? '').trim() || 'suspended from the web console'}`.slice(0, 300);
        const subjects = await senders.suspend(deps.policy(), addr, reason);
        message = html`<p class="ok">${t('sDone', { what: subjects.join(', ') })}</p>`;
      }
    } catch (err) {
      if (!(err instanceof AdminError)) throw err;
      return sendPage(reply.code(400), page(ctx, addr, html`<p class="error">${err.message}</p>`, 'senders'));
    }
    request.log.warn(
      { event: 'console_sender_action', user: operator, action: request.body.action, addr },
      `console: ${operator} ${request.body.action} ${addr}`,
    );
    return sendPage(
      reply,
      page(
        ctx,
        addr,
        html`${message}
          <p><a href="/senders/show?addr=${encodeURIComponent(addr)}">${addr}</a></p>`,
        'senders',
      ),
    );
  });
}
