// Boosters: they say nothing alone and count only next to a positive signal. A macro, a locked archive
// or a file that runs code (the waves after macros: LNK, scripts, ISO, smuggling); a password in the
// body next to an attachment it could open; the first message from the sender's organisation.
import type { MemoryFacts } from '../../../state/thread-memory.js';
import { domainOf, isInternalDomain } from '../../../policy/network.js';
import { findPasswords } from '../../office/index.js';
import { htmlToText } from '../markers.js';
import type { Signal } from '../scoring.js';
import { header } from '../fields.js';
import type { MessageView } from '../view.js';

export function boosters(view: MessageView, facts: MemoryFacts | undefined): Signal[] {
  const { input, from, fromOrg } = view;
  const signals: Signal[] = [];
  const risky = input.findings.find(
    (f) => /^(OFFICE_|ARCHIVE_ENCRYPTED|ARCHIVE_LIMIT|FILE_|HTML_SMUGGLING|ONENOTE_EMBEDDED_FILE)/.test(f.symbol) && f.symbol !== 'OFFICE_CORRUPT',
  );
  if (risky) signals.push({ symbol: 'SPOOF_CONTEXT_MACRO', detail: `next to ${risky.symbol}` });
  const attached =
    /^\s*multipart\/(mixed|related)/i.test(header(input.headers, 'content-type') ?? '') ||
    input.findings.some((f) => /^(OFFICE_|ARCHIVE_|TYPE_MISMATCH|FILE_|HTML_SMUGGLING|ONENOTE_)/.test(f.symbol));
  const body = [input.text ?? '', input.html ? htmlToText(input.html) : ''].join('\n');
  if (attached && body.trim() && findPasswords(body).length)
    signals.push({ symbol: 'SPOOF_CONTEXT_PASSWORD', detail: 'the body gives a password for an attachment' });
  if (facts && fromOrg && !facts.domainKnown && !isInternalDomain(input.policy, domainOf(from.address))) {
    signals.push({ symbol: 'SPOOF_CONTEXT_NEW_DOMAIN', detail: `first message from ${fromOrg}` });
  }
  return signals;
}
