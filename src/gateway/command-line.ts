// The bytes of a MAIL or RCPT line before anything reads them: the gateway forwards the line as it
// came, so it must be one the downstream cannot read as something else.
import { isUtf8 } from 'node:buffer';

/** C1 controls: two bytes in UTF-8, so looked for in the decoded text (C0 and DEL in the bytes). */
const C1 = /[\x80-\x9f]/u;

/**
 * What is wrong with a MAIL/RCPT command line as received (bytes, without its CRLF), or undefined.
 * A bare CR, NUL or other control character (a downstream may read a bare CR as the end of the
 * command: one line would become two), or bytes that are not UTF-8 (forwarding them would change
 * them to U+FFFD, so the downstream would not see what the client sent).
 */
export function commandLineFault(line: Buffer): string | undefined {
  const control = line.find((byte) => byte < 0x20 || byte === 0x7f);
  if (control !== undefined) return `control character ${hex(control)} in the command`;
  if (!isUtf8(line)) return 'the command is not valid UTF-8';
  const c1 = C1.exec(line.toString('utf8'));
  if (c1) return `control character ${hex(c1[0].charCodeAt(0))} in the command`;
  return undefined;
}

export function hex(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
