// Findings × Policy → one action. Pure: the same findings, envelope and policy always give the same
// verdict, and the verdict names the symbols (or the threshold) that decided it.
import type { Finding } from './inspect/finding.js';
import type { Envelope } from './message/parsed.js';
import type { Action, Policy, PolicyException } from './policy/schema.js';

export interface ScoredFinding extends Finding {
  /** the exception (its description, or its index) that set this finding aside */
  excepted?: string;
}

export interface Verdict {
  action: Action;
  score: number;
  /** every finding, with the policy's scores applied; excepted ones marked and not counted */
  findings: ScoredFinding[];
  /** why: the symbols or the threshold that chose the action */
  reason: string;
}

const SEVERITY: Record<Action, number> = { relay: 0, tag: 1, quarantine: 2, defer: 3, reject: 4 };

export function decide(findings: Finding[], policy: Policy, envelope?: Envelope): Verdict {
  const configured = symbolActions(policy);
  const scored: ScoredFinding[] = findings.map((f) => {
    const excepted = envelope ? exceptionFor(f, findings, envelope, policy.verdict.exceptions) : undefined;
    return { ...f, score: policy.verdict.symbols[f.symbol]?.score ?? f.score, ...(excepted ? { excepted } : {}) };
  });
  const counted = scored.filter((f) => !f.excepted);
  const score = round(counted.reduce((sum, f) => sum + f.score, 0));

  let action: Action = 'relay';
  let reasons: string[] = [];
  const escalate = (candidate: Action, why: string) => {
    if (SEVERITY[candidate] > SEVERITY[action]) {
      action = candidate;
      reasons = [why];
    } else if (candidate === action && candidate !== 'relay' && !reasons.includes(why)) {
      reasons.push(why);
    }
  };
  for (const f of counted) {
    const ruleAction = configured.get(f.symbol);
    if (ruleAction) escalate(ruleAction, f.symbol);
  }
  for (const [candidate, threshold] of Object.entries(policy.verdict.thresholds) as [Action, number | null][]) {
    if (threshold !== null && score >= threshold) escalate(candidate, `score ${score} >= ${threshold}`);
  }

  return { action, score, findings: scored, reason: reasons.join(', ') || 'no rule matched' };
}

/** Per-symbol actions: verdict.symbols overrides what a rule itself says. */
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

function exceptionFor(f: Finding, all: Finding[], envelope: Envelope, exceptions: PolicyException[]): string | undefined {
  const index = exceptions.findIndex(
    (e) =>
      (!e.symbols || e.symbols.includes(f.symbol)) &&
      (!e.senders || e.senders.some((s) => addressMatches(envelope.mailFrom, s))) &&
      (!e.recipients || (envelope.rcptTo.length > 0 && envelope.rcptTo.every((r) => e.recipients!.some((s) => addressMatches(r, s))))) &&
      (!e.sha256 || knownMacro(f, all, e.sha256)),
  );
  if (index === -1) return undefined;
  return exceptions[index].description ?? `verdict.exceptions[${index}]`;
}

/**
 * A finding about a known macro: its own source hash is listed, or it is about a VBA project
 * (`… > VBA`) every hashed module of which is listed. An unknown module next to a known one keeps
 * the whole project suspect.
 */
function knownMacro(f: Finding, all: Finding[], hashes: string[]): boolean {
  if (f.sha256) return hashes.includes(f.sha256);
  if (!f.part) return false;
  const modules = all.filter((m) => m.sha256 && m.part?.startsWith(f.part + ' > '));
  return modules.length > 0 && modules.every((m) => hashes.includes(m.sha256!));
}

/** `alice@example.com` matches itself (any case); `@example.com` matches the whole domain. */
function addressMatches(address: string, pattern: string): boolean {
  const a = address.toLowerCase();
  const p = pattern.toLowerCase();
  return p.startsWith('@') ? a.endsWith(p) : a === p;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
