// The reply-chain / identity / authentication symbols and their default scores and actions.
// src/policy/schema.ts merges these into DEFAULT_SYMBOLS; policies/default.yaml lists the same.
import type { Action } from '../../policy/schema.js';

export const SPOOF_SYMBOLS = {
  /** the sender's display name is bound to another organisation's address in the quoted thread */
  SPOOF_THREAD_NAME_CONFLICT: { score: 7 },
  /** a reply to a remembered outbound message from someone who was not in that thread */
  SPOOF_THREAD_OUTSIDER: { score: 6 },
  /** … and carrying the name (or address, in the display name) of a participant on another address */
  SPOOF_THREAD_IMPERSONATION: { score: 10 },
  /** a reply to a remembered outbound message from one of its participants, aligned envelope */
  SPOOF_THREAD_PARTICIPANT: { score: -3 },
  /** a display name known with other addresses, arriving from a new address in another organisation */
  SPOOF_KNOWN_NAME_NEW_ADDRESS: { score: 5 },
  /** an address inside the display name, in another organisation than the From address */
  SPOOF_DISPLAY_NAME_ADDRESS: { score: 4 },
  /** … naming the recipient's own organisation */
  SPOOF_DISPLAY_NAME_RCPT_DOMAIN: { score: 8 },
  /** the From (or Reply-To) domain imitates an internal domain or a known correspondent's (./lookalike.ts) */
  SPOOF_LOOKALIKE_DOMAIN: { score: 4 },
  /** … in a reply (reply markers present): a hijacked thread continued from a lookalike domain */
  SPOOF_REPLY_LOOKALIKE_DOMAIN: { score: 7 },
  /** header From and envelope sender in different organisations, no list/forwarder evidence, no DMARC pass */
  SPOOF_FROM_ENVELOPE_MISMATCH: { score: 2 },
  /** the same in a reply (reply markers present): the "real address, unrelated envelope" hijack */
  SPOOF_REPLY_FROM_ENVELOPE_MISMATCH: { score: 5 },
  /** a reply from a known correspondent through infrastructure its (or its domain's) genuine mail never used, no DMARC pass */
  SPOOF_KNOWN_SENDER_NEW_INFRA: { score: 7 },
  /** From and envelope differ, but the envelope's organisation sent genuine mail for the From domain before (a mailing service) */
  SPOOF_KNOWN_SENDING_SERVICE: { score: 0 },
  /** outbound: an internal client sending with a From of another organisation than its envelope */
  SPOOF_OUTBOUND_FROM_MISMATCH: { score: 3 },
  /** reply prefix in the subject without In-Reply-To/References */
  SPOOF_FAKE_REPLY: { score: 1 },
  /** boosters, only next to a positive spoof signal */
  SPOOF_CONTEXT_MACRO: { score: 3 },
  SPOOF_CONTEXT_PASSWORD: { score: 2 },
  SPOOF_CONTEXT_NEW_DOMAIN: { score: 1 },
  /** the spoof signals of the message add up to spoof.thresholds.tag / .quarantine */
  SPOOF_SUSPECT: { score: 0, action: 'tag' },
  SPOOF_HIJACK: { score: 0, action: 'quarantine' },
  AUTH_DMARC_REJECT: { score: 3 },
  AUTH_DMARC_QUARANTINE: { score: 2 },
  AUTH_DMARC_NONE_FAIL: { score: 0.5 },
  AUTH_DMARC_PASS: { score: 0 },
  AUTH_SPF_FAIL: { score: 1 },
  AUTH_DKIM_FAIL: { score: 1 },
  /** a DKIM signature of the From's organisation verifies (informational; explains a From/envelope difference) */
  AUTH_DKIM_ALIGNED: { score: 0 },
  AUTH_ARC_PASS: { score: 0 },
  AUTH_TEMPERROR: { score: 0 },
  /** thread/correspondent memory unreachable: memory signals skipped */
  STATE_UNAVAILABLE: { score: 0 },
  /** … and state.failMode is closed */
  STATE_FAIL_CLOSED: { score: 0, action: 'defer' },
} as const satisfies Record<string, { score: number; action?: Action }>;

export type SpoofSymbol = keyof typeof SPOOF_SYMBOLS;
