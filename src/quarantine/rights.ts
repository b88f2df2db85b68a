// What a recipient may do by themselves with a held message (quarantine.rights): release their own
// copy, request a release from an admin, or nothing. The category comes from the message's findings:
// each finding has one (by symbol, by symbol family, by its symbol's action, else the default) and
// the message gets the strictest. Someone who is not one of the message's internal envelope
// recipients may do nothing with it, whatever its findings.
import { isInternalAddress } from '../policy/network.js';
import type { Policy, RecipientRight } from '../policy/schema.js';
import type { ScoredFinding } from '../verdict.js';
import { deliveredTo } from './release.js';
import type { QuarantineMetadata } from './store.js';

const STRICTNESS: Record<RecipientRight, number> = { release: 0, request: 1, none: 2 };

/** What recipient R may do with item I, and why. */
export interface RecipientAccess {
  /** the address as the item's envelope has it (undefined: R is not one of its internal recipients) */
  recipient?: string;
  /** the strictest category over the item's findings; `none` for anyone not a recipient */
  right: RecipientRight;
  /** the findings that set `right` (empty when `default` did, or R is not a recipient) */
  because: { symbol: string; right: RecipientRight }[];
  /**
   * Whether R's copy can still be acted on: held (nothing delivered to R, no release in doubt, not
   * deleted). False: `reason` says why.
   */
  actionable: boolean;
  reason?: 'not-recipient' | 'deleted' | 'released' | 'release-pending';
}

/** One finding's category. */
export function rightOfSymbol(policy: Policy, symbol: string): RecipientRight {
  const { symbols, actions } = policy.quarantine.rights;
  const exact = symbols[symbol];
  if (exact) return exact;
  let family: { prefix: string; right: RecipientRight } | undefined;
  for (const [key, right] of Object.entries(symbols)) {
    if (!key.endsWith('*')) continue;
    const prefix = key.slice(0, -1);
    if (symbol.startsWith(prefix) && (!family || prefix.length > family.prefix.length)) family = { prefix, right };
  }
  if (family) return family.right;
  const action = policy.verdict.symbols[symbol]?.action;
  return (action && actions[action]) || policy.quarantine.rights.default;
}

/** The findings that say why the message was held: not excepted, with a positive score or an action other than relay. */
export function holdingFindings(policy: Policy, findings: ScoredFinding[]): ScoredFinding[] {
  return findings.filter((f) => {
    if (f.excepted) return false;
    const action = policy.verdict.symbols[f.symbol]?.action;
    return f.score > 0 || (action !== undefined && action !== 'relay');
  });
}

/** The strictest category over an item's holding findings (the default when it has none). */
export function itemRight(policy: Policy, meta: QuarantineMetadata): { right: RecipientRight; because: { symbol: string; right: RecipientRight }[] } {
  const rated = [...new Set(holdingFindings(policy, meta.findings).map((f) => f.symbol))].map((symbol) => ({ symbol, right: rightOfSymbol(policy, symbol) }));
  if (!rated.length) return { right: policy.quarantine.rights.default, because: [] };
  const right = rated.reduce<RecipientRight>((worst, r) => (STRICTNESS[r.right] > STRICTNESS[worst] ? r.right : worst), 'release');
  return { right, because: rated.filter((r) => r.right === right) };
}

/** The item's envelope recipient that `address` names (case-insensitive), if it is an internal one. */
export function matchRecipient(policy: Policy, meta: QuarantineMetadata, address: string): string | undefined {
  const wanted = address.trim().toLowerCase();
  return meta.envelope.rcptTo.find((r) => r.toLowerCase() === wanted && isInternalAddress(policy, r));
}

/** What may recipient `address` do with item `meta`? */
export function recipientAccess(policy: Policy, meta: QuarantineMetadata, address: string): RecipientAccess {
  const recipient = matchRecipient(policy, meta, address);
  if (!recipient) return { right: 'none', because: [], actionable: false, reason: 'not-recipient' };
  const { right, because } = itemRight(policy, meta);
  const base = { recipient, right, because };
  if (meta.state === 'deleted') return { ...base, actionable: false, reason: 'deleted' };
  if (meta.pendingRelease) return { ...base, actionable: false, reason: 'release-pending' };
  if (deliveredTo(meta).has(recipient.toLowerCase())) return { ...base, actionable: false, reason: 'released' };
  return { ...base, actionable: true };
}
