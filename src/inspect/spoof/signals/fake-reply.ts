// SPOOF_FAKE_REPLY: a reply prefix in the subject without In-Reply-To/References (weak on its own:
// old clients and web forms do it too).
import type { Signal } from '../scoring.js';
import type { MessageView } from '../view.js';

export function fakeReply(view: MessageView): Signal | null {
  if (view.prefix?.kind !== 'reply' || view.hasThreadHeaders) return null;
  return { symbol: 'SPOOF_FAKE_REPLY', detail: `subject "${view.prefix.text}" without In-Reply-To/References` };
}
