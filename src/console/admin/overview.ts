// The overview: messages per hour by action and the top symbols (the rollup the pipeline keeps in
// the state backend, src/state/rollup.ts), and items quarantined per day (from the quarantine's own
// ids, so every node's items count whatever the state backend).
import type { FastifyInstance } from 'fastify';
import { ACTIONS } from '../../policy/schema.js';
import type { RollupView } from '../../state/rollup.js';
import { horizontalBars, stackedBars, type Series } from '../charts.js';
import { html, page } from '../layout.js';
import { pageContext, sendPage } from '../respond.js';
import type { ConsoleDeps } from '../server.js';

const HOURS = 24;
const DAYS = 14;
const COLORS: Record<string, string> = { relay: '#4c9a6a', tag: '#d8a23a', quarantine: '#c2542d', defer: '#7d6bb3', reject: '#8c1c13' };

export async function overviewRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  app.get('/', async (request, reply) => {
    const ctx = pageContext(request, reply);
    const { t } = ctx;
    const now = Date.now();
    let view: RollupView | undefined;
    let problem: string | undefined;
    if ('unavailable' in deps.state.rollup) problem = deps.state.rollup.unavailable;
    else {
      try {
        view = await deps.state.rollup.read(now, HOURS, DAYS);
      } catch (err) {
        problem = (err as Error).message;
      }
    }
    await deps.catalog.refresh();
    const held = (await deps.catalog.select({ states: ['held'] })).ids.length;
    const series: Series[] = ACTIONS.map((a) => ({ key: a, label: t(`action_${a}`), color: COLORS[a] }));
    const perHour = view
      ? view.hours.some((h) => Object.keys(h.actions).length)
        ? stackedBars(
            view.hours.map((h) => ({ label: new Date(h.start).toISOString().slice(11, 13), values: h.actions })),
            series,
            t('oPerHour', { hours: HOURS }),
          )
        : html`<p class="muted">${t('oNoData')}</p>`
      : html`<p class="warn">${t('oRollupUnavailable', { why: problem ?? '' })}</p>`;
    const symbols = view
      ? view.symbols.length
        ? horizontalBars(
            view.symbols.slice(0, 12).map((s) => ({ label: s.symbol, value: s.count })),
            t('oTopSymbols', { hours: HOURS }),
          )
        : html`<p class="muted">${t('oNoData')}</p>`
      : html`<p class="warn">${t('oRollupUnavailable', { why: problem ?? '' })}</p>`;
    const days = deps.catalog.perDay(now, DAYS);
    const perDay = stackedBars(
      days.map((d) => ({ label: new Date(d.start).toISOString().slice(5, 10), values: { quarantine: d.count } })),
      [{ key: 'quarantine', label: t('action_quarantine'), color: COLORS.quarantine }],
      t('oPerDay', { days: DAYS }),
    );
    const body = html`<p><a href="/quarantine?state=held">${t('oHeldNow', { count: held })}</a></p>
      <div class="charts">
        <section class="card chart" id="per-hour">
          <h2>${t('oPerHour', { hours: HOURS })}</h2>
          ${perHour}
        </section>
        <section class="card chart" id="top-symbols">
          <h2>${t('oTopSymbols', { hours: HOURS })}</h2>
          ${symbols}
        </section>
        <section class="card chart" id="per-day">
          <h2>${t('oPerDay', { days: DAYS })}</h2>
          ${perDay}
        </section>
      </div>`;
    return sendPage(reply, page(ctx, t('oTitle'), body, 'overview'));
  });
}
