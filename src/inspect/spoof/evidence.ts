// Why header From and envelope sender may differ legitimately: a mailing list, a forwarder, a
// bounce-handling envelope (SRS, BATV, VERP), an ARC chain that validates.
import type { HeaderField } from '../../message/parsed.js';
import type { AuthSummary } from './auth.js';
import { orgOf, parseMailboxes } from './names.js';
import { addressField, header } from './fields.js';

/** Marks of a discussion list or a forwarder: mail that went through someone else on the way, not a service sending for From. */
export const RELAYED_BY_OTHERS = ['list-post', 'mailing-list', 'x-mailing-list', 'x-beenthere', 'resent-from', 'resent-sender'];
/** List marks a mailing service also puts on a partner's bulk notices. */
const BULK_MARKS = ['list-id', 'list-unsubscribe', 'list-help'];

/** The first list or forwarder evidence the message carries, named; null when there is none. */
export function listEvidence(headers: HeaderField[], mailFrom: string, from: string, auth: AuthSummary | null): string | null {
  const names = new Set(headers.map((h) => h.name));
  for (const n of [...BULK_MARKS, ...RELAYED_BY_OTHERS]) {
    if (names.has(n)) return n;
  }
  const sender = parseMailboxes(addressField(headers, 'sender'))[0]?.address;
  if (sender && orgOf(sender) === orgOf(mailFrom)) return 'sender';
  const precedence = header(headers, 'precedence')?.toLowerCase();
  if (precedence === 'list' || precedence === 'bulk') return `precedence ${precedence}`;
  if (auth?.arc === 'pass') return 'arc pass';
  const local = mailFrom.slice(0, mailFrom.lastIndexOf('@')).toLowerCase();
  if (/^srs[01][=+-]/.test(local)) return 'SRS envelope';
  if (/^(prvs|btv1|msprvs1)=/.test(local)) return 'BATV envelope';
  // VERP: the recipient (or the From) encoded in the envelope's local part, e.g. list-bounces+bob=example.com@
  const [fromLocal = '', fromDomain = ''] = from.toLowerCase().split('@');
  if (fromDomain && (local.includes(`${fromLocal}=${fromDomain}`) || /[+=-][a-z0-9._-]+=[a-z0-9.-]+\.[a-z]{2,}$/.test(local))) return 'VERP envelope';
  return null;
}
