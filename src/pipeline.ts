// The front-end-independent part of handling one message: inspect → verdict → quarantine copy.
// The SMTP proxy (src/gateway/) and the milter (src/milter/) both call these, so a message gets the
// same findings and the same verdict whichever way it arrived.
import { inspect } from './inspect/index.js';
import type { InspectedMessage } from './message/parsed.js';
import { rememberRelayed as rememberInThread, type Observation } from './inspect/spoof/index.js';
import { threadMemoryFor } from './state/thread-memory.js';
import type { Logger } from './observe/log.js';
import type { Policy } from './policy/schema.js';
import { QuarantineStore, type QuarantineMetadata } from './quarantine/store.js';
import type { PasswordPairs } from './quarantine/password-pairs.js';
import type { Spool } from './message/spool.js';
import type { StateBackend } from './state/index.js';
import { rollupFor } from './state/rollup.js';
import { decide, type Verdict } from './verdict.js';

/** What the pipeline knows of a message besides its bytes. */
export interface MessageFacts {
  id: string;
  receivedAt: Date;
  policy: Policy;
  policyVersion: string;
  client: { address: string; helo: string; name?: string };
  /** MAIL/RCPT lines as the client sent them (ESMTP parameters included) */
  envelope: { mailFrom: string; mailLine: string; rcptTo: string[]; rcptLines: string[] };
}

/** Long-lived things analyzers may use: shared state, the logger. */
export interface Services {
  state: StateBackend;
  log: Logger;
}

/** A verdict and what inspection composed for the relayed copy (mailauth's Authentication-Results). */
export interface Judgement extends Verdict {
  /** the parsed message (headers, body text, attachment kinds): what later steps read instead of parsing again */
  inspected: InspectedMessage;
  authenticationResults?: string;
  /** what the reply-chain checks saw that the thread memory learns once the message is relayed */
  spoofObservation?: Observation;
}

/** Inspects and decides. `signal`: nobody waits for the verdict any more (the client went away); the work stops and judge rejects with its reason. */
export async function judge(spool: Spool, facts: MessageFacts, services?: Services, signal?: AbortSignal): Promise<Judgement> {
  const envelope = { mailFrom: facts.envelope.mailFrom, rcptTo: facts.envelope.rcptTo };
  const inspected = await inspect(spool, { id: facts.id, envelope, client: facts.client }, facts.policy, services ? { state: services.state } : {}, signal);
  const verdict = decide(inspected.findings, facts.policy, envelope);
  return {
    ...verdict,
    inspected: inspected.message,
    ...(inspected.authenticationResults ? { authenticationResults: inspected.authenticationResults } : {}),
    ...(inspected.spoofObservation ? { spoofObservation: inspected.spoofObservation } : {}),
  };
}

/** After the downstream accepted a message: what the thread memory learns from it (outbound threads, inbound bindings). */
export async function rememberRelayed(facts: MessageFacts, judgement: Judgement, services?: Services): Promise<void> {
  if (!services || !facts.policy.spoof.enabled) return;
  const envelope = { mailFrom: facts.envelope.mailFrom, rcptTo: facts.envelope.rcptTo };
  const memory = threadMemoryFor(services.state, facts.policy.spoof.keyPrefix);
  await rememberInThread(
    judgement.inspected.headers,
    { id: facts.id, envelope, client: facts.client, policy: facts.policy, ...(judgement.spoofObservation ? { observation: judgement.spoofObservation } : {}) },
    judgement.findings,
    memory,
    services.log,
  );
}

/**
 * Once a message's action is final (after the rate check, as the client is answered): the console's
 * overview counters. In the background and never failing: a state backend that is down loses a
 * count, never a message.
 */
export function recordVerdict(services: Services | undefined, policy: Policy, verdict: Verdict, at = Date.now()): void {
  if (!services) return;
  const symbols = verdict.findings.filter((f) => !f.excepted).map((f) => f.symbol);
  rollupFor(services.state, policy.console.keyPrefix)
    .record(at, verdict.action, symbols)
    .catch((err: unknown) => services.log.debug({ event: 'rollup_failed', err: (err as Error).message }, 'overview counters not updated'));
}

export class QuarantineWriteError extends Error {
  override name = 'QuarantineWriteError';
}

/** The durable quarantine copy; throws QuarantineWriteError (answer 4xx, never 250) when it fails. */
export async function quarantineMessage(spool: Spool, facts: MessageFacts, verdict: Verdict & { spoofObservation?: Observation }): Promise<QuarantineMetadata> {
  try {
    return await new QuarantineStore(facts.policy.quarantine.dir).put(spool.read(), {
      id: facts.id,
      receivedAt: facts.receivedAt.toISOString(),
      client: facts.client,
      envelope: facts.envelope,
      size: spool.size,
      findings: verdict.findings,
      verdict: { action: verdict.action, score: verdict.score, reason: verdict.reason },
      policyVersion: facts.policyVersion,
      // inbound mail's observation: what trusting the sender on release teaches the thread memory
      ...(verdict.spoofObservation?.infrastructure ? { observation: verdict.spoofObservation } : {}),
    });
  } catch (err) {
    throw new QuarantineWriteError(`quarantine write to ${facts.policy.quarantine.dir} failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * After the message's reply (relayed, or held in our quarantine): the separate password mail, in the
 * background (src/quarantine/password-pairs.ts). A held encrypted item waits for its password; a
 * relayed message's password candidates are tried on the sender's held items.
 */
export function pairPasswords(
  pairs: PasswordPairs,
  front: 'smtp' | 'milter',
  facts: MessageFacts,
  judgement: Judgement,
  outcome: 'relayed' | 'quarantined',
): void {
  pairs.after({
    id: facts.id,
    front,
    policy: facts.policy,
    mailFrom: facts.envelope.mailFrom,
    rcptTo: facts.envelope.rcptTo,
    verdict: judgement,
    outcome,
    passwords: judgement.inspected.passwords ?? [],
  });
}

/**
 * Headers the relayed copy gets at the top, per policy: the verdict header (always for `tag`) and
 * Authentication-Results (spoof.authenticationResults). Both front ends add exactly these.
 */
export function addedHeaders(judgement: Judgement, id: string, policy: Policy): { name: string; value: string }[] {
  const headers: { name: string; value: string }[] = [];
  if (judgement.action === 'tag' || policy.relay.verdictHeader) headers.push(verdictHeader(judgement, id));
  if (policy.spoof.authenticationResults && judgement.authenticationResults) {
    const colon = judgement.authenticationResults.indexOf(':');
    headers.push({ name: 'Authentication-Results', value: judgement.authenticationResults.slice(colon + 1).trim() });
  }
  return headers;
}

/** The header a tagged (or, per policy, every relayed) message gets at the top; no line break. */
export function verdictHeader(verdict: Verdict, id: string): { name: string; value: string } {
  const symbols =
    verdict.findings
      .filter((f) => !f.excepted)
      .map((f) => f.symbol)
      .join(',') || 'none';
  return { name: 'X-Mailmoat-Verdict', value: `${verdict.action}; score=${verdict.score}; symbols=${symbols}; id=${id}` };
}
