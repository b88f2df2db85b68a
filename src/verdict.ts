// Findings × Policy → one action. Pure: the same findings and policy always give the same verdict,
// and the verdict names the symbols that decided it.
import type { Finding } from './inspect/finding.js';
import type { Action, Policy } from './policy/schema.js';

export interface Verdict {
  action: Action;
  score: number;
  /** findings with the policy's scores applied */
  findings: Finding[];
  /** why: the symbols or the threshold that chose the action */
  reason: string;
}

const SEVERITY: Record<Action, number> = { relay: 0, defer: 1, reject: 2 };

export function decide(findings: Finding[], policy: Policy): Verdict {
  const configured = symbolActions(policy);
  const scored = findings.map((f) => ({ ...f, score: policy.verdict.symbols[f.symbol]?.score ?? f.score }));
  const score = round(scored.reduce((sum, f) => sum + f.score, 0));

  let action: Action = 'relay';
  let reasons: string[] = [];
  const escalate = (candidate: Action, why: string) => {
    if (SEVERITY[candidate] > SEVERITY[action]) {
      action = candidate;
      reasons = [why];
    } else if (candidate === action && candidate !== 'relay') {
      reasons.push(why);
    }
  };
  for (const f of scored) {
    const ruleAction = configured.get(f.symbol);
    if (ruleAction) escalate(ruleAction, f.symbol);
  }
  const { reject, defer } = policy.verdict.thresholds;
  if (reject !== null && score >= reject) escalate('reject', `score ${score} >= ${reject}`);
  else if (defer !== null && score >= defer) escalate('defer', `score ${score} >= ${defer}`);

  return { action, score, findings: scored, reason: reasons.join(', ') || 'no rule matched' };
}

/** Per-symbol actions: verdict.symbols overrides what the rule itself says. */
function symbolActions(policy: Policy): Map<string, Action> {
  const actions = new Map<string, Action>();
  for (const rule of [...policy.rules.headers, ...policy.rules.size]) {
    if (rule.action) actions.set(rule.symbol, rule.action);
  }
  for (const [symbol, entry] of Object.entries(policy.verdict.symbols)) {
    if (entry.action) actions.set(symbol, entry.action);
  }
  return actions;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
