// Signals become findings with the policy's scores; their sum against spoof.thresholds adds
// SPOOF_SUSPECT (tag) or SPOOF_HIJACK (quarantine).
import type { Policy } from '../../policy/schema.js';
import type { Finding } from '../finding.js';
import { SPOOF_SYMBOLS, type SpoofSymbol } from './symbols.js';

/** One reply-chain signal: a symbol and the line that explains it. */
export interface Signal {
  symbol: SpoofSymbol;
  detail: string;
}

export function finding(symbol: SpoofSymbol, detail: string, policy: Policy): Finding {
  return { symbol, score: policy.verdict.symbols[symbol]?.score ?? SPOOF_SYMBOLS[symbol].score, detail };
}

/** Does the signal count for the sender being someone else (a positive score under this policy)? */
export function isPositive(signal: Signal, policy: Policy): boolean {
  return (policy.verdict.symbols[signal.symbol]?.score ?? SPOOF_SYMBOLS[signal.symbol].score) > 0;
}

/** Signals (and authentication findings) to findings, plus SPOOF_SUSPECT/SPOOF_HIJACK when their sum reaches spoof.thresholds. */
export function score(signals: Signal[], policy: Policy, extra: Finding[] = []): Finding[] {
  const findings = [...signals.map((s) => finding(s.symbol, s.detail, policy)), ...extra];
  const scoreOf = (f: Finding) => policy.verdict.symbols[f.symbol]?.score ?? f.score;
  const total = Math.round(findings.reduce((sum, f) => sum + scoreOf(f), 0) * 100) / 100;
  const { tag, quarantine } = policy.spoof.thresholds;
  const named = findings
    .filter((f) => scoreOf(f) > 0)
    .map((f) => f.symbol)
    .join(', ');
  if (quarantine !== null && total >= quarantine) findings.push(finding('SPOOF_HIJACK', `spoof score ${total} >= ${quarantine}: ${named}`, policy));
  else if (tag !== null && total >= tag) findings.push(finding('SPOOF_SUSPECT', `spoof score ${total} >= ${tag}: ${named}`, policy));
  return findings;
}
