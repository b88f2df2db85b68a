// What `mailmoat sender` shows and changes, for both ways of reaching the state: the CLI on Redis
// directly, and the running gateway's admin socket for the embedded in-memory backend.
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../observe/log.js';
import type { Policy, RateMetric } from '../policy/schema.js';
import type { Rollup } from '../state/rollup.js';
import { METRICS, planFor, type Plan } from './plan.js';
import { subject, type Counts, type RateStore, type Subject } from './store.js';

export const BY: Record<string, RateMetric> = {
  messages: 'messages',
  'external-recipients': 'externalRecipients',
  office: 'office',
  'from-mismatch': 'fromMismatch',
  macro: 'macro',
  spoof: 'spoof',
};

export interface SubjectReport {
  subject: Subject;
  suspended: { by: string; since: string; detail: string } | null;
  hold: string | null;
  windows: { window: number; counts: Record<RateMetric, number> }[];
  baseline: { current: number; average: number };
}

export class AdminError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The subjects an ADDR names: an IP address, or an address as envelope sender and header From. */
export function subjectsFor(addr: string): Subject[] {
  const plain = addr.trim().replace(/^<|>$/g, '');
  if (net.isIP(plain)) return [subject('ip', plain)];
  if (!plain.includes('@')) throw new AdminError(`not an address or IP: ${addr}`);
  return [subject('sender', plain), subject('from', plain)];
}

function report(
  r: { subject: Subject; suspended: string | null; hold: string | null; counts: Counts[]; baseline: { current: number; average: number } },
  plan: Plan,
): SubjectReport {
  let suspended: SubjectReport['suspended'] = null;
  if (r.suspended) {
    const [by = '', since = '0', ...detail] = r.suspended.split('|');
    suspended = { by, since: new Date(Number(since)).toISOString(), detail: detail.join('|') };
  }
  return {
    subject: r.subject,
    suspended,
    hold: r.hold,
    windows: plan.windows.map((window, w) => ({
      window,
      counts: Object.fromEntries(METRICS.map((m, i) => [m, r.counts[w][i]])) as Record<RateMetric, number>,
    })),
    baseline: { current: r.baseline.current, average: Math.round(r.baseline.average * 100) / 100 },
  };
}

export async function show(store: RateStore, policy: Policy, addr: string): Promise<SubjectReport[]> {
  const plan = planFor(policy.rate);
  const results = await store.peek(subjectsFor(addr), plan);
  return results.map((r) => report(r, plan));
}

export async function top(store: RateStore, policy: Policy, window: number, by: RateMetric, limit: number): Promise<SubjectReport[]> {
  const plan = planFor(policy.rate);
  const w = plan.windows.indexOf(window);
  if (w === -1) throw new AdminError(`window ${window}ms is not one of rate.windows`);
  const subjects = await store.subjects(plan, window);
  const reports: SubjectReport[] = [];
  for (let i = 0; i < subjects.length; i += 500) {
    for (const r of await store.peek(subjects.slice(i, i + 500), plan)) reports.push(report(r, plan));
  }
  return reports
    .filter((r) => r.windows[w].counts.messages > 0 || r.suspended)
    .sort((a, b) => b.windows[w].counts[by] - a.windows[w].counts[by] || a.subject.localeCompare(b.subject))
    .slice(0, limit);
}

export async function suspend(store: RateStore, policy: Policy, addr: string, reason: string): Promise<Subject[]> {
  const plan = planFor(policy.rate);
  const subjects = subjectsFor(addr);
  for (const s of subjects) await store.suspend(s, reason, plan);
  return subjects;
}

/** Lifts suspensions and holds; returns the subjects that had one. */
export async function unsuspend(store: RateStore, policy: Policy, addr: string): Promise<Subject[]> {
  const plan = planFor(policy.rate);
  const lifted: Subject[] = [];
  for (const s of subjectsFor(addr)) if (await store.unsuspend(s, plan)) lifted.push(s);
  return lifted;
}

/**
 * The admin endpoint of a gateway with the in-memory backend: HTTP on a UNIX socket (mode 0600),
 * GET /top?window=MS&by=METRIC&limit=N, GET /show?addr=, POST /suspend?addr=&reason=, POST /unsuspend?addr=;
 * GET /rollup?hours=&days= (the console's overview counters, src/state/rollup.ts).
 */
export async function startAdminServer(socketPath: string, store: RateStore, policy: () => Policy, log: Logger, rollup?: Rollup): Promise<http.Server> {
  mkdirSync(path.dirname(path.resolve(socketPath)), { recursive: true });
  rmSync(socketPath, { force: true });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const q = (name: string) => url.searchParams.get(name) ?? '';
    const run = async (): Promise<unknown> => {
      const p = policy();
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /top':
          return top(store, p, Number(q('window')), BY[q('by')] ?? 'messages', Number(q('limit') || 20));
        case 'GET /show':
          return show(store, p, q('addr'));
        case 'POST /suspend':
          return suspend(store, p, q('addr'), q('reason') || 'suspended by an administrator');
        case 'POST /unsuspend':
          return unsuspend(store, p, q('addr'));
        case 'GET /rollup':
          if (!rollup) throw new AdminError('not found', 404);
          return rollup.read(Date.now(), Math.min(Number(q('hours')) || 24, 48), Math.min(Number(q('days')) || 14, 31));
        default:
          throw new AdminError('not found', 404);
      }
    };
    run().then(
      (body) => {
        if (req.method === 'POST')
          log.warn({ event: 'sender_admin', action: url.pathname.slice(1), addr: q('addr') }, `sender ${url.pathname.slice(1)} ${q('addr')}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      },
      (err: Error) =>
        res.writeHead(err instanceof AdminError ? err.status : 500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message })),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  const { chmodSync } = await import('node:fs');
  chmodSync(socketPath, 0o600);
  log.info({ event: 'sender_admin_listening', socket: socketPath }, 'sender admin endpoint ready');
  return server;
}

/** The CLI side of the admin socket. */
export function adminRequest(socketPath: string, method: 'GET' | 'POST', pathAndQuery: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: pathAndQuery, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString() || 'null') as { error?: string } | null;
        if (res.statusCode !== 200) reject(new AdminError(body?.error ?? `admin endpoint: HTTP ${res.statusCode}`, res.statusCode));
        else resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error('admin endpoint did not answer within 5s')));
    req.on('error', reject);
    req.end();
  });
}
