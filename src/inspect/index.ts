// The inspect stage: the header block and the MIME walk into every leaf for every message (a text
// message can carry a document as much as a multipart one), every analyzer, one list of findings.
import type { Spool } from '../message/spool.js';
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import { MAX_HEADER_BYTES, parseMessage, type ClientInfo, type Envelope, type HeaderField, type InspectedMessage } from '../message/parsed.js';
import { parseMessageParts } from './attachments.js';
import { headerRuleFindings, sizeRuleFindings } from './rules.js';
import { analyzeSpoof, looksLikeReply, type Observation } from './spoof/index.js';
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
  /** the client went away: the scan stops, and inspect rejects with the signal's reason */
  signal?: AbortSignal,
): Promise<{ message: InspectedMessage; findings: Finding[]; authenticationResults?: string; spoofObservation?: Observation }> {
  const message = await parseMessage(spool, meta);
  const findings: Finding[] = [];
  if (message.headerTruncated) {
    findings.push({ symbol: 'HEADER_TOO_LARGE', score: 0, detail: `header block longer than ${MAX_HEADER_BYTES} bytes; rules saw the first part` });
  }
  for (const analyzer of analyzers) findings.push(...(await analyzer(message, policy)));
  // one MIME pass over every message: the leaves for the engine, the body for the reply-chain checks
  const parts = await parseMessageParts(spool.inMemory() ?? spool.read(), policy, { reread: () => readAll(spool), ...(signal ? { signal } : {}) });
  signal?.throwIfAborted();
  findings.push(...parts.findings);
  message.text = parts.text;
  message.html = parts.html;
  message.attachmentKinds = parts.attachmentKinds;
  message.passwords = parts.passwords;
  const { state } = services;
  // the reply-chain checks read the body of multipart mail and of replies; a single text part without
  // reply markers is not read as a thread (lines in it that look quoted do not make it a reply)
  const threadBody = !isSingleTextPart(message.headers) || looksLikeReply(message.headers);
  const spoof = await analyzeSpoof({
    headers: message.headers,
    text: threadBody ? message.text : undefined,
    html: threadBody ? message.html : undefined,
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
  return {
    message,
    findings,
    ...(spoof.authenticationResults ? { authenticationResults: spoof.authenticationResults } : {}),
    ...(spoof.observation ? { spoofObservation: spoof.observation } : {}),
  };
}

function isSingleTextPart(headers: HeaderField[]): boolean {
  const type = headers.find((h) => h.name === 'content-type')?.value.toLowerCase() ?? 'text/plain';
  const disposition = headers.find((h) => h.name === 'content-disposition')?.value.toLowerCase() ?? '';
  return /^\s*text\//.test(type) && !disposition.startsWith('attachment');
}

/** The whole message in one buffer (only for the rare second reading of a message whose headers disagree). */
async function readAll(spool: Spool): Promise<Buffer> {
  const held = spool.inMemory();
  if (held) return Buffer.concat(held);
  const chunks: Buffer[] = [];
  for await (const chunk of spool.read()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
