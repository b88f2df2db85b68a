// Admin-written rules from the policy: a header matching a pattern, a message over a size.
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import type { InspectedMessage } from '../message/parsed.js';

export function headerRuleFindings(message: InspectedMessage, policy: Policy): Finding[] {
  const findings: Finding[] = [];
  for (const rule of policy.rules.headers) {
    const pattern = new RegExp(rule.match, 'iu');
    const name = rule.header.toLowerCase();
    const hit = message.headers.find((h) => h.name === name && pattern.test(h.value));
    if (hit) {
      findings.push({
        symbol: rule.symbol,
        score: rule.score,
        detail: `${rule.header} matches /${rule.match}/: ${JSON.stringify(hit.value.slice(0, 200))}`,
      });
    }
  }
  return findings;
}

export function sizeRuleFindings(message: InspectedMessage, policy: Policy): Finding[] {
  return policy.rules.size
    .filter((rule) => message.size > rule.over)
    .map((rule) => ({ symbol: rule.symbol, score: rule.score, detail: `size ${message.size} > ${rule.over} bytes` }));
}
