// The inspect stage: the header block for every message, the MIME walk into attachments for those
// that can carry any, every analyzer, one list of findings.
import type { Spool } from '../gateway/spool.js';
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import { MAX_HEADER_BYTES, parseMessage, type ClientInfo, type Envelope, type InspectedMessage } from './message.js';
import { mayCarryAttachments, scanMessageParts } from './attachments.js';
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
  if (mayCarryAttachments(message.headers)) findings.push(...(await scanMessageParts(spool.read(), policy)));
  return { message, findings };
}
