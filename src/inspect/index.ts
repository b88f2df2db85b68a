// The inspect stage: parse once, run every analyzer, collect findings.
import type { Spool } from '../gateway/spool.js';
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import { MAX_HEADER_BYTES, parseMessage, type ClientInfo, type Envelope, type InspectedMessage } from './message.js';
import { headerRuleFindings, sizeRuleFindings } from './rules.js';

export type Analyzer = (message: InspectedMessage, policy: Policy) => Finding[] | Promise<Finding[]>;

export const analyzers: Analyzer[] = [headerRuleFindings, sizeRuleFindings];

export async function inspect(
  spool: Spool,
  meta: { id: string; envelope: Envelope; client: ClientInfo },
  policy: Policy,
): Promise<{ message: InspectedMessage; findings: Finding[] }> {
  const message = await parseMessage(spool, meta);
  const findings: Finding[] = [];
  if (message.headerTruncated) {
    findings.push({ symbol: 'HEADER_TOO_LARGE', score: 0, detail: `header block longer than ${MAX_HEADER_BYTES} bytes; rules saw the first part` });
  }
  for (const analyzer of analyzers) findings.push(...(await analyzer(message, policy)));
  return { message, findings };
}
