// Charts drawn on the server as inline SVG (no chart library in the browser, no script, no CDN): a
// stacked bar chart over time and a horizontal bar chart. Labels go through the `html` template, so
// a symbol name is text in the SVG whatever it holds.
import { html, type Html } from './layout.js';

export interface Series {
  key: string;
  label: string;
  color: string;
}

function niceMax(value: number): number {
  if (value <= 5) return 5;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/** Bars over time, each stacked by series; `columns` oldest first. */
export function stackedBars(columns: { label: string; values: Record<string, number> }[], series: Series[], title: string): Html {
  const width = 720;
  const height = 240;
  const left = 40;
  const bottom = 28;
  const top = 10;
  const plotH = height - bottom - top;
  const totals = columns.map((c) => series.reduce((sum, s) => sum + (c.values[s.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const slot = (width - left - 8) / Math.max(1, columns.length);
  const barW = Math.max(2, slot * 0.75);
  const labelEvery = Math.ceil(columns.length / 12);
  const bars = columns.map((c, i) => {
    let y = top + plotH;
    const x = left + i * slot + (slot - barW) / 2;
    const rects = series.map((s) => {
      const v = c.values[s.key] ?? 0;
      if (!v) return '';
      const h = (v / max) * plotH;
      y -= h;
      return html`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"
        ><title>${c.label} ${s.label}: ${v}</title></rect
      >`;
    });
    const label =
      i % labelEvery === 0
        ? html`<text x="${(x + barW / 2).toFixed(1)}" y="${height - 10}" text-anchor="middle" font-size="11" fill="#5d6878">${c.label}</text>`
        : '';
    return html`${rects}${label}`;
  });
  const grid = [0, 0.5, 1].map((f) => {
    const y = top + plotH - f * plotH;
    return html`<line x1="${left}" x2="${width - 4}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e3e7ec" /><text
        x="${left - 6}"
        y="${(y + 4).toFixed(1)}"
        text-anchor="end"
        font-size="11"
        fill="#5d6878"
        >${Math.round(max * f)}</text
      >`;
  });
  return html`<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${title}" xmlns="http://www.w3.org/2000/svg">${grid}${bars}</svg>
    <div class="legend">
      ${series.map(
        (s) =>
          html`<span
            ><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="${s.color}" /></svg> ${s.label}</span
          >`,
      )}
    </div>`;
}

/** Horizontal bars, largest first. */
export function horizontalBars(items: { label: string; value: number }[], title: string, color = '#1558b0'): Html {
  const rowH = 22;
  const width = 720;
  const labelW = 260;
  const height = Math.max(1, items.length) * rowH + 6;
  const max = niceMax(Math.max(0, ...items.map((i) => i.value)));
  const rows = items.map((item, i) => {
    const y = 3 + i * rowH;
    const w = ((width - labelW - 60) * item.value) / max;
    return html`<text x="${labelW - 8}" y="${y + 15}" text-anchor="end" font-size="12" font-family="ui-monospace,monospace" fill="#1d2430">${item.label}</text>
      <rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${color}"><title>${item.label}: ${item.value}</title></rect>
      <text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" font-size="12" fill="#3c4756">${item.value}</text>`;
  });
  return html`<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${title}" xmlns="http://www.w3.org/2000/svg">${rows}</svg>`;
}
