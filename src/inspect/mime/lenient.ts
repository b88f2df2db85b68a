// The lenient reading of a MIME text: split by every boundary declared anywhere in it, whatever
// header declared it and whether the structure around it holds, and decode each part by the
// transfer encoding its header block names. Word opens MHT documents this way, and it is the
// second reading of a message whose headers disagree with themselves: what a permissive client
// may show that a strict parser does not.
import libqp from 'libqp';
import { decodeUuBody } from './uuencode.js';

const MAX_PARTS = 500;
const MAX_BOUNDARIES = 10;

export interface LenientPart {
  /** Content-Location's or the file name's last element, else `part#N` */
  name: string;
  headers: string;
  /** the decoded body; for a part without a transfer encoding, the body as it stands */
  bytes: Buffer;
  /** the part named a transfer encoding (base64, quoted-printable, uuencode) and was decoded by it */
  encoded: boolean;
}

interface RawPart {
  headers: string;
  body: string;
}

/** Parts under every `boundary=` value found in the text (at most MAX_BOUNDARIES of them). */
export function splitMultipart(text: string): RawPart[] {
  const parts: RawPart[] = [];
  const boundaries = new Set<string>();
  for (const m of text.matchAll(/boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))/gi)) {
    boundaries.add(m[1] ?? m[2]);
    if (boundaries.size >= MAX_BOUNDARIES) break;
  }
  for (const boundary of boundaries) {
    const chunks = text.split(`--${boundary}`);
    for (const chunk of chunks.slice(1)) {
      if (parts.length >= MAX_PARTS) break;
      if (chunk.startsWith('--')) continue;
      const sep = /\r?\n\r?\n/.exec(chunk);
      if (!sep) continue;
      parts.push({ headers: chunk.slice(0, sep.index), body: chunk.slice(sep.index + sep[0].length) });
    }
  }
  return parts;
}

export function base64Bytes(s: string): Buffer {
  return Buffer.from(s.replace(/[^A-Za-z0-9+/=_-]/g, ''), 'base64');
}

/** Every part of the lenient split, decoded (a latin1 string holds the bytes one per character). */
export function* lenientParts(text: string): Generator<LenientPart> {
  let n = 0;
  for (const part of splitMultipart(text)) {
    n++;
    const cte = /content-transfer-encoding\s*:\s*"?([\w-]+)/i.exec(part.headers)?.[1]?.toLowerCase() ?? '';
    const named =
      /content-location\s*:\s*(\S+)/i.exec(part.headers)?.[1] ?? /(?:file)?name\*?\s*=\s*(?:"([^"]+)"|([^\s;"]+))/i.exec(part.headers)?.slice(1).find(Boolean);
    const name = named?.replace(/^.*[\\/]/, '') || `part#${n}`;
    if (/^b(ase)?-?64$/.test(cte)) yield { name, headers: part.headers, bytes: base64Bytes(part.body), encoded: true };
    else if (cte === 'quoted-printable') yield { name, headers: part.headers, bytes: libqp.decode(Buffer.from(part.body, 'latin1')), encoded: true };
    else if (/^(x-)?uu(e|encode)$/.test(cte))
      for (const block of decodeUuBody(Buffer.from(part.body, 'latin1')))
        yield { name: block.name || name, headers: part.headers, bytes: block.bytes, encoded: true };
    else yield { name, headers: part.headers, bytes: Buffer.from(part.body, 'latin1'), encoded: false };
  }
}
