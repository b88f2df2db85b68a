// The one MIME pass of a message: every leaf walked and decoded (src/inspect/mime/), every leaf that
// is not a real text body scanned by the Office/archive engine in its worker pool, one leaf at a
// time and all from one budget for the message (office.*), and the body text (text, HTML) kept for
// the reply-chain checks and the passwords.
import type { Policy } from '../policy/schema.js';
import type { Finding } from './finding.js';
import type { Kind } from './office/index.js';
import { MessageBudget } from './office/message-budget.js';
import { scanAttachmentOffThread } from './office/pool.js';
import type { OfficeLimits } from './office/types.js';
import { scanMessage } from './mime/scan.js';
import type { MessageSource } from './mime/walk.js';

export function officeLimits(policy: Policy): OfficeLimits {
  const { maxDepth, maxEntries, maxBytes, maxRatio, maxPasswordAttempts, timeout } = policy.office;
  return { maxDepth, maxEntries, maxBytes, maxRatio, maxPasswordAttempts, timeoutMs: timeout };
}

export interface PartsOptions {
  /** stops the pass (the client went away): it rejects with the signal's reason, and no worker goes on */
  signal?: AbortSignal;
  /** the raw message once more, for the second reading of a message whose headers disagree */
  reread?: () => Promise<Buffer>;
  /** passwords from a separate password mail, tried on encrypted leaves before the message's own */
  extraPasswords?: string[];
}

/** Scans every leaf of a message (its raw bytes, or a stream of them); returns the findings. */
export async function scanMessageParts(source: MessageSource, policy: Policy, options: PartsOptions = {}): Promise<Finding[]> {
  return (await parseMessageParts(source, policy, options)).findings;
}

/** The one MIME pass: the leaves' findings, and the decoded body (text, HTML) for the reply-chain checks. */
export async function parseMessageParts(
  source: MessageSource,
  policy: Policy,
  options: PartsOptions = {},
): Promise<{ findings: Finding[]; text?: string; html?: string; attachmentKinds: Kind[]; passwords: string[] }> {
  const limits = officeLimits(policy);
  const budget = new MessageBudget(limits);
  const { signal } = options;
  const result = await scanMessage(source, {
    // the whole header block is read, up to the message size limit: a Content-Type after 256 KB of
    // headers is still the Content-Type a client obeys
    maxHeaderBytes: policy.limits.maxMessageSize,
    signal,
    reread: options.reread,
    ...(options.extraPasswords?.length ? { extraPasswords: options.extraPasswords } : {}),
    scanLeaf: (leaf, passwords) =>
      scanAttachmentOffThread(leaf.bytes, leaf.filename, leaf.contentType, passwords, limits, { path: leaf.path, budget, ...(signal ? { signal } : {}) }),
  });
  return { findings: result.findings, text: result.text, html: result.html, attachmentKinds: result.kinds, passwords: result.passwords };
}
