// One held item tried again with passwords from another message (the separate password mail): the
// stored message read back from the quarantine, the same MIME pass as at reception with the
// passwords tried first, and the verdict taken again. Decrypted and clean: released through the
// same release code as `mailmoat quarantine release` (lock, once only, audit), where the policy
// allows. Decrypted and dangerous: it stays held, its metadata now naming the real finding. Not
// opened: nothing changes. Every outcome is a line in the quarantine's audit log.
import os from 'node:os';
import { parseMessageParts } from '../inspect/attachments.js';
import type { Finding } from '../inspect/finding.js';
import { MIME_SYMBOLS } from '../inspect/mime/limits.js';
import { OFFICE_SYMBOLS } from '../inspect/office/types.js';
import type { Policy } from '../policy/schema.js';
import { decide, type ScoredFinding, type Verdict } from '../verdict.js';
import { release, type ReleaseResult } from './release.js';
import { QuarantineError, type QuarantineMetadata, type QuarantineStore } from './store.js';

/** Who the gateway is in the history, the audit log and the release header. */
export const GATEWAY_OPERATOR = 'gateway';

export type RetryOutcome =
  /** no candidate opened anything: the item is as it was */
  | { outcome: 'still-locked' }
  /** opened and clean, and released (to all or some recipients) */
  | { outcome: 'released'; verdict: Verdict; release: ReleaseResult }
  /** opened and clean, but not released: the policy says so, or the release failed (why in `reason`) */
  | { outcome: 'clean-held'; verdict: Verdict; reason: string; release?: ReleaseResult }
  /** opened, and what it holds keeps it held (a macro...); the metadata has the real findings. `locked`: parts still closed */
  | { outcome: 'held'; verdict: Verdict; locked: number }
  /** not held any more (released, deleted, a release pending) or changed meanwhile: left alone */
  | { outcome: 'gone'; reason: string };

/** What the MIME pass finds: the symbols a rescan replaces. The rest (header rules, spoof, rates) stay as judged at reception. */
const MIME_PASS_SYMBOLS = new Set<string>([...Object.values(OFFICE_SYMBOLS), ...Object.values(MIME_SYMBOLS)]);
const LOCKED = new Set<string>([OFFICE_SYMBOLS.OFFICE_ENCRYPTED_UNSCANNABLE, OFFICE_SYMBOLS.ARCHIVE_ENCRYPTED_UNSCANNABLE]);

export function isLocked(f: Finding & { excepted?: string }): boolean {
  return LOCKED.has(f.symbol) && !f.excepted;
}

export async function retryWithPasswords(
  store: QuarantineStore,
  id: string,
  passwords: string[],
  policy: Policy,
  /** the message the passwords came from (its id), for the history and the audit log */
  from: string,
): Promise<RetryOutcome> {
  const before = await store.get(id);
  if (before.state !== 'held' || before.pendingRelease) return gone(store, id, from, `it is ${before.pendingRelease ? 'being released' : before.state}`);
  const bytes = await store.readMessage(id);
  const scan = await parseMessageParts(bytes, policy, { extraPasswords: passwords, reread: () => Promise.resolve(bytes) });
  const lockedBefore = before.findings.filter(isLocked).length;
  const lockedAfter = scan.findings.filter(isLocked).length;
  // opened: fewer locked parts, or something found that was not there before (inside a part opened in part)
  const foundInside = scan.findings.some((f) => !isLocked(f) && !before.findings.some((b) => b.symbol === f.symbol && b.part === f.part));
  if (lockedAfter >= lockedBefore && !foundInside) {
    await audit(store, id, from, 'still-locked', `none of ${passwords.length} candidate password(s) opened anything`);
    return { outcome: 'still-locked' };
  }

  const findings: Finding[] = [...before.findings.filter((f) => !MIME_PASS_SYMBOLS.has(f.symbol)).map(unscored), ...scan.findings];
  const verdict = decide(findings, policy, { mailFrom: before.envelope.mailFrom, rcptTo: before.envelope.rcptTo });
  const clean = verdict.action === 'relay' || verdict.action === 'tag';
  const found = describeFindings(verdict.findings);
  const opened = lockedAfter ? `opened ${lockedBefore - lockedAfter} of ${lockedBefore} encrypted part(s)` : 'opened it';
  const detail = `a password from message ${from} ${opened}: ${found}; verdict ${verdict.action}`;
  const recorded = await recordRescan(store, id, before.sha256, verdict, detail);
  if (recorded !== true) return gone(store, id, from, recorded);

  if (!clean) {
    await audit(store, id, from, 'held', detail, verdict);
    return { outcome: 'held', verdict, locked: lockedAfter };
  }
  if (!policy.office.passwordRelease) {
    const reason = 'clean, not released: office.passwordRelease is off (release it with mailmoat quarantine release)';
    await audit(store, id, from, 'clean-held', `${detail}; ${reason}`, verdict);
    return { outcome: 'clean-held', verdict, reason };
  }
  await audit(store, id, from, 'clean', detail, verdict);
  let result: ReleaseResult;
  try {
    result = await release(store, id, policy, { operator: GATEWAY_OPERATOR, note: `opened with a password from message ${from}; ${found}` });
  } catch (err) {
    // refused (locked by an admin, released meanwhile): the release code said why; the item is as it says
    if (err instanceof QuarantineError) return { outcome: 'clean-held', verdict, reason: err.message };
    throw err;
  }
  if (result.status === 'released' || result.status === 'partial') return { outcome: 'released', verdict, release: result };
  return { outcome: 'clean-held', verdict, reason: result.reason, release: result };
}

/** The new findings and verdict in the item's metadata, under its lock; a reason string when the item changed meanwhile. */
async function recordRescan(store: QuarantineStore, id: string, sha256: string, verdict: Verdict, detail: string): Promise<true | string> {
  let lock;
  try {
    lock = await store.lock(id, GATEWAY_OPERATOR);
  } catch (err) {
    return (err as Error).message;
  }
  try {
    const meta: QuarantineMetadata = await store.get(id);
    if (meta.state !== 'held' || meta.pendingRelease || meta.sha256 !== sha256) return `it changed while it was scanned (now ${meta.state})`;
    meta.findings = verdict.findings;
    meta.verdict = { action: verdict.action, score: verdict.score, reason: verdict.reason };
    meta.history.push({ at: new Date().toISOString(), event: 'password-rescan', by: GATEWAY_OPERATOR, host: os.hostname(), detail });
    await store.update(meta);
    return true;
  } finally {
    await store.unlock(lock);
  }
}

async function gone(store: QuarantineStore, id: string, from: string, reason: string): Promise<RetryOutcome> {
  await audit(store, id, from, 'skipped', reason);
  return { outcome: 'gone', reason };
}

async function audit(store: QuarantineStore, id: string, from: string, result: string, detail: string, verdict?: Verdict): Promise<void> {
  await store
    .audit({
      action: 'password-retry',
      id,
      operator: GATEWAY_OPERATOR,
      result,
      passwordMail: from,
      detail,
      ...(verdict ? { verdict: verdict.action, symbols: verdict.findings.filter((f) => !f.excepted).map((f) => f.symbol) } : {}),
    })
    .catch(() => undefined);
}

/** A stored finding as the verdict takes it again (its exception is decided anew). */
function unscored(f: ScoredFinding): Finding {
  const { excepted: _excepted, ...finding } = f;
  return finding;
}

function describeFindings(findings: ScoredFinding[]): string {
  const counted = findings.filter((f) => !f.excepted);
  return counted.length ? counted.map((f) => f.symbol).join(', ') : 'nothing found';
}
