// The rate policy compiled into what a store needs for one check-and-update: windows, thresholds as
// (metric, window, limit, blocks?, suspends?), the baseline rule, the suspension settings.
import type { Policy, RateAction, RateMetric } from '../policy/schema.js';

/** Counter order in every store result: one row of these per window. */
export const METRICS: readonly RateMetric[] = ['messages', 'externalRecipients', 'office', 'fromMismatch', 'macro', 'spoof'];

/** The symbol of each metric's threshold findings (documented in policies/default.yaml). */
export const METRIC_SYMBOL: Record<RateMetric, string> = {
  messages: 'RATE_MESSAGES',
  externalRecipients: 'RATE_EXTERNAL_RECIPIENTS',
  office: 'RATE_OFFICE_ATTACHMENTS',
  fromMismatch: 'RATE_FROM_MISMATCH',
  macro: 'RATE_MACRO_FINDINGS',
  spoof: 'RATE_SPOOF_FINDINGS',
};
export const BASELINE_SYMBOL = 'RATE_BASELINE_JUMP';
export const SUSPENDED_SYMBOL = 'SENDER_SUSPENDED';

/** Buckets per window: counts slide in steps of window / BUCKETS. */
export const BUCKETS = 10;

export interface PlanThreshold {
  metric: RateMetric;
  /** index into Plan.windows */
  window: number;
  limit: number;
  action: RateAction;
  symbol: string;
  /** the message is not accepted (so not counted): defer, or suspend with suspend.action defer */
  blocks: boolean;
  suspends: boolean;
}

export interface Plan {
  prefix: string;
  windows: number[];
  cap: number;
  thresholds: PlanThreshold[];
  baseline: { action: RateAction | null; period: number; halfLife: number; factor: number; floor: number; blocks: boolean; suspends: boolean; ttl: number };
  suspend: { blocks: boolean; ttl: number };
}

const plans = new WeakMap<Policy['rate'], Plan>();

export function planFor(rate: Policy['rate']): Plan {
  let plan = plans.get(rate);
  if (plan) return plan;
  const suspendBlocks = rate.suspend.action === 'defer';
  const blocks = (a: RateAction | null) => a === 'defer' || (a === 'suspend' && suspendBlocks);
  const b = rate.baseline;
  plan = {
    prefix: rate.keyPrefix,
    windows: [...rate.windows],
    cap: rate.distinctCap,
    thresholds: rate.thresholds.map((t) => ({
      metric: t.metric,
      window: rate.windows.indexOf(t.window),
      limit: t.limit,
      action: t.action,
      symbol: METRIC_SYMBOL[t.metric],
      blocks: blocks(t.action),
      suspends: t.action === 'suspend',
    })),
    baseline: {
      action: b.action,
      period: b.period,
      halfLife: b.halfLife,
      factor: b.factor,
      floor: b.floor,
      blocks: blocks(b.action),
      suspends: b.action === 'suspend',
      ttl: Math.max(4 * b.halfLife, 2 * b.period),
    },
    suspend: { blocks: suspendBlocks, ttl: rate.suspend.ttl },
  };
  plans.set(rate, plan);
  return plan;
}

/** Per-period decay of the baseline average: half its weight is older than halfLife. */
export function baselineDecay(plan: Plan): number {
  return Math.pow(0.5, plan.baseline.period / Math.max(1, plan.baseline.halfLife));
}

/** `1h`, `10m`, `2s`, `500ms` for a number of milliseconds. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
