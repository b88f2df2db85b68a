// The rate counters' "Office / macro-capable / archive" messages: by the attachments' content, as
// the inspect stage typed them with the Office engine's sniff() (never by name or Content-Type).
import { isOfficeKind, type Kind } from '../inspect/office/sniff.js';

/** Office documents, macro-capable formats and archives (zip, OLE, RTF, SYLK, MHT, OneNote...). */
export function hasOfficeAttachment(kinds: Kind[]): boolean {
  return kinds.some(isOfficeKind);
}
