// What the page behind a digest link starts from: the token checked, then the item it names read and
// the token's recipient checked against it. Opening a link changes nothing (link scanners fetch
// URLs); the actions are requestRelease / releaseOwnCopy in src/quarantine/requests.ts, called with
// the recipient this returns, never one taken from the request.
import type { Policy } from '../policy/schema.js';
import { recipientAccess, type RecipientAccess } from '../quarantine/rights.js';
import { QuarantineError, type QuarantineMetadata, type QuarantineStore } from '../quarantine/store.js';
import { verifyRecipientToken } from './tokens.js';

export type RecipientLink =
  | { status: 'ok'; meta: QuarantineMetadata; recipient: string; access: RecipientAccess; expiresAt: number }
  /** genuine but past its expiry: the page may say so, and show nothing of the item */
  | { status: 'expired'; expiresAt: number }
  | { status: 'bad-signature' | 'malformed' }
  /** signed, but the item is gone (purged) or the recipient is not an internal recipient of it */
  | { status: 'not-found' };

export async function openRecipientLink(store: QuarantineStore, policy: Policy, key: Buffer, token: string, now: number = Date.now()): Promise<RecipientLink> {
  const check = verifyRecipientToken(key, token, now);
  if (check.status === 'expired') return { status: 'expired', expiresAt: check.expiresAt };
  if (check.status !== 'ok') return { status: check.status };
  let meta: QuarantineMetadata;
  try {
    meta = await store.get(check.id);
  } catch (err) {
    if (err instanceof QuarantineError && err.kind === 'not-found') return { status: 'not-found' };
    throw err;
  }
  const access = recipientAccess(policy, meta, check.recipient);
  if (!access.recipient) return { status: 'not-found' };
  return { status: 'ok', meta, recipient: access.recipient, access, expiresAt: check.expiresAt };
}
