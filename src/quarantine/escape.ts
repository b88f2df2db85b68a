// Values from a quarantined message (headers, envelope, HELO) are attacker-written. Before they reach
// an admin's terminal, control characters (C0, DEL, C1: escape sequences, carriage returns that hide
// text) and the Unicode characters that reorder or break lines are shown escaped, and a backslash is
// doubled so that an escape cannot be forged.
const UNSAFE = /[\\\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/gu;

const NAMED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\u001b': '\\e' };

export function escapeControl(value: string): string {
  return value.replace(UNSAFE, (ch) => {
    const named = NAMED[ch];
    if (named) return named;
    const code = ch.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
