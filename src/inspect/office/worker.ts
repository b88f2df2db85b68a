// Runs in a worker thread (see pool.ts): one turn of one attachment's scan, off the gateway's event
// loop, with the message's budget share; it gives back what it spent.
import type { Finding } from '../finding.js';
import { scanAttachment } from './index.js';
import { KeyCache } from './key-cache.js';
import type { BudgetShare, TurnSpent } from './message-budget.js';
import type { OfficeLimits, ScanBudget } from './types.js';

export interface ScanTask {
  bytes: Uint8Array;
  filename: string | undefined;
  contentType: string | undefined;
  /** null: not known yet (ScanContext.passwordsLater) */
  passwords: string[] | null;
  limits: OfficeLimits;
  /** the attachment's place in the message (['invoice.eml', 'invoice.docm']) */
  path?: string[];
  budget: BudgetShare;
  /** a new key derivation after this long is left for the message's next turn */
  turnMs: number;
}

export interface ScanOutcome extends TurnSpent {
  findings: Finding[];
}

export default async function scan(task: ScanTask): Promise<ScanOutcome> {
  const start = Date.now();
  // a view, not a copy: the bytes were transferred to this worker for this turn (pool.ts)
  const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  const share = task.budget;
  const budget: ScanBudget = {
    bytesLeft: share.bytesLeft,
    entriesLeft: share.entriesLeft,
    passwordAttemptsLeft: share.passwordAttemptsLeft,
    deadline: start + share.timeLeftMs,
    keys: new KeyCache(share.keys, start + task.turnMs),
  };
  const findings = await scanAttachment(bytes, task.filename, task.contentType, task.passwords, task.limits, task.path, budget);
  return {
    findings,
    bytesLeft: budget.bytesLeft,
    entriesLeft: budget.entriesLeft,
    passwordAttemptsLeft: budget.passwordAttemptsLeft,
    elapsedMs: Date.now() - start,
    derived: [...budget.keys.derived],
    deferred: budget.keys.deferred,
  };
}
