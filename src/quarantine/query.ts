// Selecting and presenting quarantined items: the filters of `list` (and of bulk release/delete),
// and the readable forms of `list` and `show`. Every value that came from the message or the client
// is escaped before it is printed (escape.ts).
import { escapeControl } from './escape.js';
import type { QuarantineMetadata, QuarantineState } from './store.js';

export interface ListFilter {
  /** ms epoch: received at or after */
  since?: number;
  /** ms epoch: received before */
  until?: number;
  symbols?: string[];
  /** envelope sender: `@domain`, or a case-insensitive part of the address */
  sender?: string;
  recipient?: string;
  states?: QuarantineState[];
  /** only items with a recipient's release request not yet answered (requests.ts pendingRequests) */
  requested?: boolean;
}

const SINCE = /^(\d+)(m|h|d|w)$/;
const SINCE_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `2d`, `12h`, `30m`, `1w`, or a date/time such as 2024-05-01 or 2024-05-01T12:00:00Z. */
export function parseSince(value: string, now = Date.now()): number | undefined {
  const rel = SINCE.exec(value);
  if (rel) return now - Number(rel[1]) * SINCE_MS[rel[2]];
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isFinite(at) ? at : undefined;
}

function addressMatches(address: string, wanted: string): boolean {
  const a = address.toLowerCase();
  const w = wanted.toLowerCase();
  return w.startsWith('@') ? a.endsWith(w) : a.includes(w);
}

/** What a filter looks at: full metadata, or the catalog's summary of it (catalog.ts). */
export type Matchable = Pick<QuarantineMetadata, 'receivedAt' | 'state'> & {
  findings: { symbol: string; excepted?: string }[];
  envelope: { mailFrom: string; rcptTo: string[] };
  /** whether a recipient's release request is pending: known to the catalog's summaries, which alone serve the `requested` filter */
  requested?: boolean;
};

export function matches(meta: Matchable, filter: ListFilter): boolean {
  if (filter.since !== undefined && Date.parse(meta.receivedAt) < filter.since) return false;
  if (filter.until !== undefined && Date.parse(meta.receivedAt) >= filter.until) return false;
  if (filter.states?.length && !filter.states.includes(meta.state)) return false;
  if (filter.requested && !meta.requested) return false;
  if (filter.symbols?.length) {
    const symbols = new Set(meta.findings.filter((f) => !f.excepted).map((f) => f.symbol.toUpperCase()));
    if (!filter.symbols.some((s) => symbols.has(s.toUpperCase()))) return false;
  }
  if (filter.sender !== undefined && !addressMatches(meta.envelope.mailFrom, filter.sender)) return false;
  if (filter.recipient !== undefined && !meta.envelope.rcptTo.some((r) => addressMatches(r, filter.recipient!))) return false;
  return true;
}

function symbolsOf(meta: QuarantineMetadata): string {
  return [...new Set(meta.findings.filter((f) => !f.excepted).map((f) => f.symbol))].join(',');
}

function clip(value: string, width: number): string {
  return value.length <= width ? value : value.slice(0, width - 1) + '…';
}

/** The readable table of `list`: one line per item, values escaped and clipped. */
export function formatTable(items: QuarantineMetadata[]): string {
  const rows = items.map((m) => [
    m.id,
    m.receivedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    m.state + (m.pendingRelease ? '!' : ''),
    clip(escapeControl(m.envelope.mailFrom || '<>'), 32),
    clip(escapeControl(m.envelope.rcptTo[0] ?? '') + (m.envelope.rcptTo.length > 1 ? ` +${m.envelope.rcptTo.length - 1}` : ''), 32),
    clip(symbolsOf(m), 40),
    clip(escapeControl(m.headers?.subject ?? ''), 50),
  ]);
  const head = ['ID', 'RECEIVED', 'STATE', 'SENDER', 'RECIPIENTS', 'SYMBOLS', 'SUBJECT'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

/** `show`: the metadata and findings for a human, every foreign value escaped. */
export function formatItem(meta: QuarantineMetadata, headers: { name: string; value: string }[]): string {
  const e = escapeControl;
  const out: string[] = [];
  out.push(`id:        ${meta.id}`);
  out.push(
    `state:     ${meta.state}${meta.pendingRelease ? `  (release outcome unknown: by ${e(meta.pendingRelease.by)} at ${meta.pendingRelease.at} on ${e(meta.pendingRelease.host)})` : ''}`,
  );
  out.push(`received:  ${meta.receivedAt}`);
  out.push(`client:    ${e(meta.client.address)} (HELO ${e(meta.client.helo)})`);
  out.push(`envelope:  ${e(meta.envelope.mailLine)}`);
  for (const line of meta.envelope.rcptLines) out.push(`           ${e(line)}`);
  out.push(`size:      ${meta.size} bytes`);
  out.push(`sha256:    ${meta.sha256}`);
  out.push(`verdict:   ${meta.verdict.action}, score ${meta.verdict.score}: ${e(meta.verdict.reason)}`);
  out.push(`policy:    version ${e(meta.policyVersion)}`);
  out.push('');
  out.push(`findings (${meta.findings.length}):`);
  for (const f of meta.findings) {
    out.push(`  ${f.symbol}  score ${f.score}${f.excepted ? `  (excepted: ${e(f.excepted)})` : ''}`);
    if (f.part) out.push(`    part:   ${e(f.part)}`);
    if (f.detail) out.push(`    detail: ${e(f.detail)}`);
    if (f.sha256) out.push(`    sha256: ${e(f.sha256)}`);
  }
  out.push('');
  out.push(headers.length ? 'headers:' : 'headers: (message file gone)');
  for (const h of headers) out.push(`  ${e(h.name)}: ${e(h.value)}`);
  out.push('');
  out.push('history:');
  for (const h of meta.history) {
    out.push(`  ${h.at}  ${h.event}  by ${e(h.by)}${h.host ? ` on ${e(h.host)}` : ''}${h.recipients?.length ? `  to ${e(h.recipients.join(', '))}` : ''}`);
    if (h.detail) out.push(`    ${e(h.detail)}`);
  }
  return out.join('\n') + '\n';
}
