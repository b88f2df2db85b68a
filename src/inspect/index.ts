// The inspect stage: the header block for every message, the MIME walk into attachments for those
// that can carry any, every analyzer, one list of findings.
import type { Spool } from '../message/spool.js';
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import { MAX_HEADER_BYTES, parseMessage, type ClientInfo, type Envelope, type InspectedMessage } from '../message/parsed.js';
import { mayCarryAttachments, parseMessageParts } from './attachments.js';
import { headerRuleFindings, sizeRuleFindings } from './rules.js';
import { analyzeSpoof, looksLikeReply } from './spoof/index.js';
import type { DNSResolver } from './spoof/auth.js';
import type { StateBackend } from '../state/index.js';
import { threadMemoryFor } from '../state/thread-memory.js';

export type Analyzer = (message: InspectedMessage, policy: Policy) => Finding[] | Promise<Finding[]>;

export const analyzers: Analyzer[] = [headerRuleFindings, sizeRuleFindings];

/** What inspect may use besides the message: shared state (thread memory), a DNS resolver for tests. */
export interface InspectServices {
  state?: StateBackend;
  resolver?: DNSResolver;
}

export async function inspect(
  spool: Spool,
  meta: { id: string; envelope: Envelope; client: ClientInfo },
  policy: Policy,
  services: InspectServices = {},
): Promise<{ message: InspectedMessage; findings: Finding[]; authenticationResults?: string }> {
  const message = await parseMessage(spool, meta);
  const findings: Finding[] = [];
  if (message.headerTruncated) {
    findings.push({ symbol: 'HEADER_TOO_LARGE', score: 0, detail: `header block longer than ${MAX_HEADER_BYTES} bytes; rules saw the first part` });
  }
  for (const analyzer of analyzers) findings.push(...(await analyzer(message, policy)));
  // one MIME pass, for attachments and for the body of replies/forwards; plain new mail skips it
  if (mayCarryAttachments(message.headers) || (policy.spoof.enabled && looksLikeReply(message.headers))) {
    const parts = await parseMessageParts(spool.read(), policy);
    findings.push(...parts.findings);
    message.text = parts.text;
    message.html = parts.html;
    message.attachmentKinds = parts.attachmentKinds;
  }
  const { state } = services;
  const spoof = await analyzeSpoof({
    headers: message.headers,
    text: message.text,
    html: message.html,
    envelope: message.envelope,
    client: message.client,
    findings,
    policy,
    memory: state ? threadMemoryFor(state, policy.spoof.keyPrefix) : undefined,
    failMode: state?.kind === 'redis' ? state.failMode : undefined,
    resolver: services.resolver,
    raw: () => spool.read(),
  });
  findings.push(...spoof.findings);
  return { message, findings, ...(spoof.authenticationResults ? { authenticationResults: spoof.authenticationResults } : {}) };
}
