// The reply-chain spoofing analyzer: is this "reply" from who the thread says it is from? Each signal
// is one function in ./signals/ reading one view of the message (./view.ts); this file only orders
// them: the cheap header signals, authentication when a decision depends on it, one memory lookup,
// the envelope and memory signals, boosters next to a positive signal, then the sum against
// spoof.thresholds (SPOOF_SUSPECT / SPOOF_HIJACK). Symbols and default scores: ./symbols.ts.
import { observeInfrastructure } from './infrastructure.js';
import { isOutbound, type Observation } from './learn.js';
import { recall } from './recall.js';
import { isPositive, score, type Signal } from './scoring.js';
import { authenticate } from './signals/authentication.js';
import { boosters } from './signals/boosters.js';
import { displayNameAddress } from './signals/display-name.js';
import { fromEnvelopeMismatch, knownSendingService, outboundFromMismatch } from './signals/envelope.js';
import { fakeReply } from './signals/fake-reply.js';
import { newInfrastructure } from './signals/infrastructure.js';
import { knownNameNewAddress } from './signals/known-name.js';
import { lookalikeSignals } from './lookalike-signal.js';
import { quotedNameConflict } from './signals/quoted-conflict.js';
import { threadMembership } from './signals/thread.js';
import { SPOOF_SYMBOLS } from './symbols.js';
import { header } from './fields.js';
import { readMessage, type SpoofInput } from './view.js';
import { subjectPrefix } from './markers.js';
import type { HeaderField } from '../../message/parsed.js';
import type { Finding } from '../finding.js';

export { SPOOF_SYMBOLS };
export type { SpoofInput };
export { isOutbound, learnFromRelayed, learnVouched, rememberRelayed, type Observation } from './learn.js';
export { orgDomain } from './names.js';

export interface SpoofResult {
  findings: Finding[];
  /** the Authentication-Results header mailauth composed, when authentication ran */
  authenticationResults?: string;
  /** what the thread memory may learn from the message once it is relayed (rememberRelayed) */
  observation?: Observation;
}

/** Does the message look like a reply or forward from its header block alone? (gates the body parse) */
export function looksLikeReply(headers: HeaderField[]): boolean {
  return !!subjectPrefix(header(headers, 'subject')) || headers.some((h) => h.name === 'in-reply-to' || h.name === 'references');
}

export async function analyzeSpoof(input: SpoofInput): Promise<SpoofResult> {
  const { policy } = input;
  if (!policy.spoof.enabled) return { findings: [] };
  const view = readMessage(input);
  const present = (...found: (Signal | null)[]) => found.filter((s): s is Signal => !!s);

  const observation: Observation = { quoted: view.quoted.bindings };
  if (isOutbound(policy, input.client, view.mailFrom, view.from.address)) return { findings: score(present(outboundFromMismatch(view)), policy), observation };

  const signals = present(displayNameAddress(view), quotedNameConflict(view));
  // a lookalike of an internal or known correspondent's domain in From or Reply-To
  signals.push(...(await lookalikeSignals({ headers: input.headers, from: view.from.address, isReply: view.isReply, policy, memory: input.memory })));
  const authenticated = await authenticate(view, view.isReply || view.orgMismatch || signals.length > 0);
  observation.infrastructure = observeInfrastructure(input.client, view.envOrg, authenticated.auth);

  const positive = () => signals.some((s) => isPositive(s, policy));
  const unexplained = view.orgMismatch && !authenticated.evidence && !authenticated.dmarcPass;
  const { facts, findings: stateFindings } = await recall(view, view.isReply || unexplained || positive());
  // a mailing service the memory knows for the From domain explains the envelope as well as a list does
  const service = knownSendingService(view, facts, observation.infrastructure);
  const authn = { ...authenticated, evidence: authenticated.evidence ?? service };
  signals.push(...present(fromEnvelopeMismatch(view, authn, service), fakeReply(view)));
  if (facts) {
    const infrastructure = newInfrastructure(view, facts, authn, observation.infrastructure);
    const thread = threadMembership(view, facts, authn, !!infrastructure);
    signals.push(...present(thread, knownNameNewAddress(view, facts, authn, thread?.symbol === 'SPOOF_THREAD_IMPERSONATION'), infrastructure));
  }
  if (positive()) signals.push(...boosters(view, facts));

  const findings = [...score(signals, policy, authn.findings), ...stateFindings];
  return { findings, observation, ...(authn.header ? { authenticationResults: authn.header } : {}) };
}
