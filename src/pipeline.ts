// The front-end-independent part of handling one message: inspect → verdict → quarantine copy.
// The SMTP proxy (src/gateway/) and the milter (src/milter/) both call these, so a message gets the
// same findings and the same verdict whichever way it arrived.
import { inspect } from './inspect/index.js';
import { parseMessage } from './inspect/message.js';
import { rememberRelayed as rememberInThread } from './inspect/spoof/index.js';
import { threadMemoryFor } from './state/thread-memory.js';
import type { Logger } from './observe/log.js';
import type { Policy } from './policy/schema.js';
import { QuarantineStore, type QuarantineMetadata } from './quarantine/store.js';
import type { Spool } from './gateway/spool.js';
import type { StateBackend } from './state/index.js';
import { decide, type Verdict } from './verdict.js';

/** What the pipeline knows of a message besides its bytes. */
export interface MessageFacts {
  id: string;
  receivedAt: Date;
  policy: Policy;
  policyVersion: string;
  client: { address: string; helo: string };
  /** MAIL/RCPT lines as the client sent them (ESMTP parameters included) */
  envelope: { mailFrom: string; mailLine: string; rcptTo: string[]; rcptLines: string[] };
}

/** Long-lived things analyzers may use: shared state, the logger. */
export interface Services {
  state: StateBackend;
  log: Logger;
}

export async function judge(spool: Spool, facts: MessageFacts, services?: Services): Promise<Verdict> {
  const envelope = { mailFrom: facts.envelope.mailFrom, rcptTo: facts.envelope.rcptTo };
  const { findings } = await inspect(spool, { id: facts.id, envelope, client: facts.client }, facts.policy, services ? { state: services.state } : {});
  return decide(findings, facts.policy, envelope);
}

/** After the downstream accepted a message: what the thread memory learns from it (outbound threads, inbound bindings). */
export async function rememberRelayed(spool: Spool, facts: MessageFacts, verdict: Verdict, services?: Services): Promise<void> {
  if (!services || !facts.policy.spoof.enabled) return;
  const envelope = { mailFrom: facts.envelope.mailFrom, rcptTo: facts.envelope.rcptTo };
  const message = await parseMessage(spool, { id: facts.id, envelope, client: facts.client });
  const memory = threadMemoryFor(services.state, facts.policy.spoof.keyPrefix);
  await rememberInThread(message.headers, { id: facts.id, envelope, client: facts.client, policy: facts.policy }, verdict.findings, memory, services.log);
}

export class QuarantineWriteError extends Error {
  override name = 'QuarantineWriteError';
}

/** The durable quarantine copy; throws QuarantineWriteError (answer 4xx, never 250) when it fails. */
export async function quarantineMessage(spool: Spool, facts: MessageFacts, verdict: Verdict): Promise<QuarantineMetadata> {
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
    });
  } catch (err) {
    throw new QuarantineWriteError(`quarantine write to ${facts.policy.quarantine.dir} failed: ${(err as Error).message}`);
  }
}

/** The header a tagged (or, per policy, every relayed) message gets at the top; no line break. */
export function verdictHeader(verdict: Verdict, id: string): { name: string; value: string } {
  const symbols = verdict.findings.filter((f) => !f.excepted).map((f) => f.symbol).join(',') || 'none';
  return { name: 'X-Mailmoat-Verdict', value: `${verdict.action}; score=${verdict.score}; symbols=${symbols}; id=${id}` };
}
