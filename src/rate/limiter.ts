// The gateway's side of sender rates: a MAIL-time check (suspension, recent hold) and, after the
// verdict, one check-and-update per accepted outbound message whose fired thresholds become
// findings with the rate policy's actions. Redis trouble is the policy's fail mode, never a hang.
import type { Server } from 'node:http';
import type { Finding } from '../inspect/finding.js';
import type { HeaderField } from '../message/parsed.js';
import type { Kind } from '../inspect/office/sniff.js';
import type { Logger } from '../observe/log.js';
import { metrics } from '../observe/metrics.js';
import type { Action, Policy, RateAction } from '../policy/schema.js';
import type { StateBackend } from '../state/index.js';
import { decide, type Verdict } from '../verdict.js';
import { startAdminServer } from './admin.js';
import { rollupFor } from '../state/rollup.js';
import { hasOfficeAttachment } from './attachment-kinds.js';
import { MemoryRateStore } from './memory-store.js';
import { classify, mailSubjects } from './outbound.js';
import { BASELINE_SYMBOL, formatDuration, METRICS, planFor, SUSPENDED_SYMBOL, type Plan } from './plan.js';
import { RedisRateStore } from './redis-store.js';
import type { RateStore, RecordResult } from './store.js';

/** An SMTP reply to give instead of going on (smtp-server reads responseCode). */
export class RateRefusal extends Error {
  constructor(
    readonly responseCode: number,
    text: string,
  ) {
    super(text);
    this.name = 'RateRefusal';
  }
}

/** What the message step needs to know of the message. */
export interface RateMessage {
  id: string;
  policy: Policy;
  client: string;
  mailFrom: string;
  rcptTo: string[];
  /** as the inspect stage parsed them (src/message/parsed.ts): header From, attachment kinds by content */
  headers: HeaderField[];
  attachmentKinds: Kind[];
}

const stores = new WeakMap<object, RateStore>();

/** The one rate store of a state backend (one per Redis client; one per in-memory backend object). */
export function rateStoreFor(state: StateBackend): RateStore {
  const owner: object = state.kind === 'redis' ? state.redis : state;
  let store = stores.get(owner);
  if (!store) {
    store = state.kind === 'redis' ? new RedisRateStore(state.redis) : new MemoryRateStore();
    stores.set(owner, store);
  }
  return store;
}

export class RateLimiter {
  readonly store: RateStore;
  private admin: Server | undefined;

  constructor(
    private readonly state: StateBackend,
    private readonly log: Logger,
  ) {
    this.store = rateStoreFor(state);
  }

  /** With the in-memory backend and rate.admin.socket set: the endpoint `mailmoat sender` talks to. */
  async open(policy: () => Policy): Promise<void> {
    const socket = policy().rate.admin.socket;
    if (this.store.kind !== 'memory' || !socket || this.admin) return;
    this.admin = await startAdminServer(socket, this.store, policy, this.log, rollupFor(this.state, policy().console.keyPrefix));
  }

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    if (admin) await new Promise<void>((resolve) => admin.close(() => resolve()));
  }

  private get failMode(): 'open' | 'closed' {
    return this.state.kind === 'redis' ? this.state.failMode : 'open';
  }

  /** MAIL time: a refusal for a suspended or held outbound sender (or closed fail mode), else undefined. */
  async checkMail(policy: Policy, id: string, client: string, mailFrom: string): Promise<RateRefusal | undefined> {
    if (!policy.rate.enabled) return undefined;
    const subjects = mailSubjects(policy, client, mailFrom);
    if (!subjects) return undefined;
    const plan = planFor(policy.rate);
    let statuses;
    try {
      statuses = await this.store.status(subjects, plan);
    } catch (err) {
      return this.unavailable(id, 'mail', err);
    }
    for (const s of statuses) {
      if (s.suspended && plan.suspend.blocks) {
        const [symbol] = s.suspended.split('|');
        this.log.warn({ event: 'rate_refused', id, subject: s.subject, symbol: SUSPENDED_SYMBOL, reason: s.suspended }, 'suspended sender deferred at MAIL');
        return new RateRefusal(451, `4.7.1 <${mailFrom}> is suspended for unusual outbound mail (${symbol}); ask your mail administrator [${id}]`);
      }
      if (s.hold) {
        const [symbol, value, limit, window] = s.hold.split('|');
        this.log.info({ event: 'rate_refused', id, subject: s.subject, symbol, hold: s.hold }, 'held sender deferred at MAIL');
        return new RateRefusal(
          451,
          `4.7.1 <${mailFrom}> sent too much mail (${symbol}: ${value} > ${limit} in ${formatDuration(Number(window))}), try again later [${id}]`,
        );
      }
    }
    return undefined;
  }

  /**
   * After the verdict: counts an accepted outbound message (a verdict of defer or reject is not
   * accepted, so not counted) and folds the fired thresholds into the verdict. Throws RateRefusal
   * (451 4.3.0) when the state is unreachable and the fail mode is closed.
   */
  async afterVerdict<V extends Verdict>(message: RateMessage, verdict: V): Promise<V> {
    const { policy } = message;
    if (!policy.rate.enabled || verdict.action === 'defer' || verdict.action === 'reject') return verdict;
    const { headers } = message;
    const outbound = classify(policy, message.client, message.mailFrom, message.rcptTo, headers.find((h) => h.name === 'from')?.value);
    if (!outbound || !outbound.subjects.length) return verdict;
    const counted = verdict.findings.filter((f) => !f.excepted);
    const sample = {
      office: hasOfficeAttachment(message.attachmentKinds),
      fromMismatch: outbound.fromMismatch,
      macro: counted.some((f) => f.symbol.startsWith('OFFICE_MACRO') || f.symbol === 'OFFICE_XLM_MACRO'),
      spoof: counted.some((f) => f.symbol.startsWith('SPOOF_') && f.score > 0),
      externalRecipients: outbound.externalRecipients,
    };
    const plan = planFor(policy.rate);
    let results: RecordResult[];
    try {
      results = await this.store.record(outbound.subjects, sample, plan);
    } catch (err) {
      const refusal = this.unavailable(message.id, 'data', err);
      if (refusal) throw refusal;
      return verdict;
    }
    const findings: Finding[] = [];
    const actions = new Map<string, Action>();
    const act = (symbol: string, action: RateAction | null) => {
      const mapped = toAction(action, policy);
      if (mapped && severity(mapped) > severity(actions.get(symbol) ?? 'relay')) actions.set(symbol, mapped);
    };
    for (const r of results) {
      for (const i of r.fired) {
        const f = describe(r, i, plan);
        findings.push({ symbol: f.symbol, score: 0, detail: f.detail });
        act(f.symbol, f.action);
        this.log.warn(
          { event: 'rate_alert', id: message.id, subject: r.subject, symbol: f.symbol, action: f.action, detail: f.detail, committed: r.committed },
          `sender rate: ${r.subject} ${f.detail}`,
        );
        metrics.rateAlerts.inc({ symbol: f.symbol, action: f.action ?? 'none' });
        this.webhook(policy, { event: 'rate_alert', id: message.id, subject: r.subject, symbol: f.symbol, action: f.action, detail: f.detail });
      }
      if (r.suspended) {
        const [symbol, since] = r.suspended.split('|');
        findings.push({ symbol: SUSPENDED_SYMBOL, score: 0, detail: `${r.subject} suspended by ${symbol} since ${new Date(Number(since)).toISOString()}` });
        act(SUSPENDED_SYMBOL, 'suspend');
        if (r.fired.some((i) => (i === -1 ? plan.baseline.suspends : plan.thresholds[i].suspends)) && Number(since) >= Date.now() - 60_000) {
          this.log.error({ event: 'sender_suspended', id: message.id, subject: r.subject, reason: r.suspended }, `sender suspended: ${r.subject}`);
        }
      }
    }
    if (!findings.length) return verdict;
    // rate findings carry the rate policy's actions, unless verdict.symbols names an action for them
    const symbols = { ...policy.verdict.symbols };
    for (const [symbol, action] of actions) if (!symbols[symbol]?.action) symbols[symbol] = { ...symbols[symbol], action };
    const overlay: Policy = { ...policy, verdict: { ...policy.verdict, symbols } };
    const previous = verdict.findings.map(({ excepted: _e, ...f }) => f);
    return { ...verdict, ...decide([...previous, ...findings], overlay, { mailFrom: message.mailFrom, rcptTo: message.rcptTo }) };
  }

  private unavailable(id: string, stage: 'mail' | 'data', err: unknown): RateRefusal | undefined {
    const closed = this.failMode === 'closed';
    metrics.stateUnavailable.inc({ component: 'rate', failMode: this.failMode });
    this.log.error(
      { event: 'rate_state_unavailable', id, stage, failMode: this.failMode, err: (err as Error).message },
      closed ? 'sender-rate state unreachable: deferring (fail mode closed)' : 'sender-rate state unreachable: message NOT counted or checked (fail mode open)',
    );
    return closed ? new RateRefusal(451, `4.3.0 Sender rate state unavailable, try again later [${id}]`) : undefined;
  }

  private webhook(policy: Policy, body: Record<string, unknown>): void {
    const url = policy.rate.alert.webhook;
    if (!url) return;
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, at: new Date().toISOString() }),
      signal: AbortSignal.timeout(policy.rate.alert.timeout),
    }).then(
      (res) => {
        if (!res.ok) this.log.warn({ event: 'rate_webhook_failed', status: res.status }, 'alert webhook refused');
        res.body?.cancel().catch(() => undefined); // only frees the connection
      },
      (err: Error) => this.log.warn({ event: 'rate_webhook_failed', err: err.message }, 'alert webhook failed'),
    );
  }
}

const SEVERITY: Record<Action, number> = { relay: 0, tag: 1, quarantine: 2, defer: 3, reject: 4 };
const severity = (a: Action) => SEVERITY[a];

/** alert: no action (the finding and the log line); suspend: what a suspended sender gets. */
function toAction(action: RateAction | null, policy: Policy): Action | undefined {
  if (action === null || action === 'alert') return undefined;
  if (action === 'suspend') return policy.rate.suspend.action;
  return action;
}

function describe(r: RecordResult, i: number, plan: Plan): { symbol: string; action: RateAction | null; detail: string } {
  if (i === -1) {
    const b = plan.baseline;
    return {
      symbol: BASELINE_SYMBOL,
      action: b.action,
      detail: `${r.subject}: ${r.baseline.current} distinct external recipients this ${formatDuration(b.period)} > ${b.factor} x average ${round(r.baseline.average)} and > ${b.floor}`,
    };
  }
  const t = plan.thresholds[i];
  const value = r.counts[t.window][METRICS.indexOf(t.metric)];
  return { symbol: t.symbol, action: t.action, detail: `${r.subject}: ${t.metric} ${value} > ${t.limit} in ${formatDuration(plan.windows[t.window])}` };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
