// One thread-memory lookup per message, only when something depends on it (a reply, or a positive
// signal the new-domain booster could join): plain new mail with nothing suspicious costs no round trip.
import { ThreadMemoryUnavailable, type MemoryFacts } from '../../state/thread-memory.js';
import type { Finding } from '../finding.js';
import { finding } from './scoring.js';
import type { MessageView } from './view.js';

export interface Recalled {
  /** undefined: no memory here, not needed, or unreachable */
  facts?: MemoryFacts;
  /** STATE_UNAVAILABLE (and STATE_FAIL_CLOSED) when the memory could not answer */
  findings: Finding[];
}

export async function recall(view: MessageView, needed: boolean): Promise<Recalled> {
  const { input, from, senderKeys, fromOrg } = view;
  const findings: Finding[] = [];
  if (!input.memory || !from.address || !needed) return { findings };
  try {
    const facts = await input.memory.lookup({
      messageIds: view.referenced,
      names: senderKeys,
      address: from.address,
      domain: fromOrg,
    });
    return { facts, findings };
  } catch (err) {
    if (!(err instanceof ThreadMemoryUnavailable)) throw err;
    findings.push(finding('STATE_UNAVAILABLE', `thread memory skipped: ${err.message}`.slice(0, 200), input.policy));
    if (input.failMode === 'closed') findings.push(finding('STATE_FAIL_CLOSED', 'state.failMode is closed', input.policy));
    return { findings };
  }
}
