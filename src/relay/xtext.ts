// xtext (RFC 3461 §4): the encoding of XFORWARD values and DSN ORCPT/ENVID.

/** `+XX` is a hex-encoded byte. */
export function decodeXtext(value: string): string {
  return value.replace(/\+([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** `+`, `=`, controls, space and non-ASCII become `+XX` (of their UTF-8 bytes). */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const plain = byte >= 33 && byte <= 126 && byte !== 0x2b && byte !== 0x3d;
    out += plain ? String.fromCharCode(byte) : '+' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
