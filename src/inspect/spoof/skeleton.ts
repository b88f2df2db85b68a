// What a domain label looks like, for comparing lookalikes: the UTS #39 skeleton (Unicode's
// confusables.txt, as the unhomoglyph package ships it: `0`→`O`, `1`→`l`, `m`→`rn`, Cyrillic `а`→`a`,
// ...), taken on NFKC lower-case text without diacritics and folded to lower case again, because a
// domain has no case: `g00gle`, `GOOGLE`, `gооgle` (Cyrillic) and `goögle` share one skeleton.
import { createRequire } from 'node:module';
import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * confusables.txt as the unhomoglyph package ships it: one code point → its prototype. Read as a
 * map (unhomoglyph's own function is a regular expression of 6,000 alternatives: slow per letter).
 */
const CONFUSABLES = createRequire(import.meta.url)('unhomoglyph/data.json') as Record<string, string>;

const stripMarks = (s: string) => s.normalize('NFD').replace(/\p{M}+/gu, '');
/** each confusable → its prototype without diacritics, lower case */
const PROTOTYPES = new Map(Object.entries(CONFUSABLES).map(([from, to]) => [from, stripMarks(to).toLowerCase()]));
/** … only where the prototype is a single letter (`m` → `rn` is not) */
const LETTER_PROTOTYPES = new Map([...PROTOTYPES].filter(([, to]) => [...to].length === 1));
const simplified = (text: string) => stripMarks(text.normalize('NFKC').toLowerCase());

/**
 * Letter pairs that read as one letter in most fonts. confusables.txt turns `m` into `rn`; folding
 * the pair back to one letter keeps the skeleton as long as the name (`exawple` is one letter from
 * `example`, not two).
 */
const PAIRS: [RegExp, string][] = [
  [/rn/g, 'm'],
  [/vv/g, 'w'],
  [/cl/g, 'd'],
];

/** The skeleton of a label or name: equal skeletons look the same to a reader. */
export function skeleton(text: string): string {
  let s = '';
  for (const ch of simplified(text)) s += PROTOTYPES.get(ch) ?? ch;
  for (const [pair, one] of PAIRS) s = s.replace(pair, one);
  return s;
}

/**
 * The skeleton letter by letter, no pairs either way: `m` stays `m`, `rn` stays `rn`. Edit distances
 * are taken on both forms, because each folds something the other keeps apart (`parner` is one
 * letter from `partner` here, three in the folded skeleton, where its `rn` reads `m`).
 */
export function letterSkeleton(text: string): string {
  let s = '';
  for (const ch of simplified(text)) s += LETTER_PROTOTYPES.get(ch) ?? ch;
  return s;
}

/** A domain in A-labels (punycode) and in Unicode, lower case, no trailing dot; null when it is not a domain. */
export function domainForms(domain: string): { ascii: string; unicode: string } | null {
  const ascii = domainToASCII(domain.trim().replace(/\.$/, '')).toLowerCase();
  if (!ascii || !ascii.includes('.')) return null;
  return { ascii, unicode: domainToUnicode(ascii) };
}
