// Lookalike domains: does a sender's registrable domain imitate one the organisation trusts (its
// own, or a correspondent's)? Compared on the label left of the public suffix (tldts, ICANN list),
// as a reader sees it (./skeleton.ts):
//   - the same name under another public suffix (example.co.jp → example.jp, example.com);
//   - confusable characters, IDN included (examp1e, exаmple with a Cyrillic а, exämple);
//   - a hyphen inserted or removed (exam-ple), a generic word added (example-jp, examplemail);
//   - a few edits: 1 (or one swap of neighbours) from 5 letters, 2 from 9 letters; shorter names
//     are too close to each other for edits to mean anything;
//   - the domain written inside another one (example.co.jp.evil.test, example-co-jp.evil.test).
// Near names are searched with a Pass-Join index (mnemonist), so thousands of known domains cost
// microseconds per message.
import leven from 'leven';
import { PassjoinIndex } from 'mnemonist';
import { parse } from 'tldts';
import { domainToUnicode } from 'node:url';
import { ADDED_WORDS } from './mail-providers.js';
import { domainForms, letterSkeleton, skeleton } from './skeleton.js';

export type LookalikeKind = 'suffix' | 'confusable' | 'hyphen' | 'word' | 'edit' | 'embedded';

export interface Target {
  /** registrable domain, A-labels */
  domain: string;
  /** the label left of the public suffix, Unicode */
  label: string;
  /** its skeleton without hyphens */
  canon: string;
  /** its letter-by-letter skeleton without hyphens (./skeleton.ts: edits are counted on both) */
  letters: string;
  /** letters of the label without hyphens (the length that decides how many edits count) */
  length: number;
  origin: 'internal' | 'correspondent';
}

export interface LookalikeMatch {
  /** the sender's registrable domain (Unicode) */
  sender: string;
  target: Target;
  kind: LookalikeKind;
  /** what was done to the target's name, for the finding's detail */
  how: string;
}

/** Edits that still count as "the same name" for a label of `length` letters. */
export function editBudget(length: number): number {
  return length < 5 ? 0 : length < 9 ? 1 : 2;
}
/** Below this, the same name under another suffix (or with a word added) is often another business. */
const MIN_NAME = 4;
/** the added words as they appear in a skeleton (`mail` is `rnail` there), longest first */
const WORDS = ADDED_WORDS.map((w) => ({ word: w, canon: skeleton(w) })).sort((a, b) => b.canon.length - a.canon.length);
const GENERIC = new Set(WORDS.map((w) => w.canon));

interface Parsed {
  registrable: string;
  unicode: string;
  label: string;
  canon: string;
  letters: string;
  length: number;
  subdomain: string;
  idn: boolean;
}

/** A domain's registrable part and the forms compared; null for an IP literal, a bare name, or no domain. */
export function parseDomain(domain: string): Parsed | null {
  const forms = domainForms(domain);
  if (!forms) return null;
  const p = parse(forms.ascii, { allowPrivateDomains: false });
  if (p.isIp || !p.domain || !p.domainWithoutSuffix) return null;
  const label = domainToUnicode(p.domainWithoutSuffix).toLowerCase();
  const canon = skeleton(label).replace(/-/g, '');
  return {
    registrable: p.domain,
    unicode: domainToUnicode(p.domain),
    label,
    canon,
    letters: letterSkeleton(label).replace(/-/g, ''),
    length: [...label.replace(/-/g, '')].length,
    subdomain: p.subdomain ?? '',
    idn: forms.ascii.split('.').some((l) => l.startsWith('xn--')),
  };
}

export function targetOf(domain: string, origin: Target['origin']): Target | null {
  const p = parseDomain(domain.replace(/^\*\./, ''));
  return p && p.canon ? { domain: p.registrable, label: p.label, canon: p.canon, letters: p.letters, length: p.length, origin } : null;
}

const distance = (a: string, b: string) => leven(a, b, { maxDistance: 3 });

/** Targets by every form a lookalike is compared on. Add-only; build a new one to forget. */
export class LookalikeIndex {
  private readonly byDomain = new Map<string, Target>();
  private readonly byCanon = new Map<string, Target[]>();
  private readonly byLetters = new Map<string, Target[]>();
  /** both skeletons of the targets allowed one edit, and two */
  private readonly near = {
    canon: [new PassjoinIndex<string>(distance, 1), new PassjoinIndex<string>(distance, 2)],
    letters: [new PassjoinIndex<string>(distance, 1), new PassjoinIndex<string>(distance, 2)],
  };

  get size(): number {
    return this.byDomain.size;
  }

  has(domain: string): boolean {
    return this.byDomain.has(domain);
  }

  add(target: Target): void {
    if (this.byDomain.has(target.domain)) return;
    this.byDomain.set(target.domain, target);
    const budget = editBudget(target.length);
    for (const form of ['canon', 'letters'] as const) {
      const map = form === 'canon' ? this.byCanon : this.byLetters;
      const same = map.get(target[form]);
      if (same) same.push(target);
      else {
        map.set(target[form], [target]);
        if (budget) this.near[form][budget - 1].add(target[form]);
      }
    }
  }

  /**
   * The strongest way `domain` imitates a target that `eligible` lets through (not the sender's own
   * organisation, not expired), or null. `kinds` false leave out the bare suffix swap and the edits:
   * the two rules that also describe unrelated businesses.
   */
  match(
    domain: string,
    eligible: (t: Target) => boolean = () => true,
    kinds: { suffix: boolean; edit: boolean } = { suffix: true, edit: true },
  ): LookalikeMatch | null {
    const s = parseDomain(domain);
    if (!s || !s.canon) return null;
    const ok = (t: Target) => t.domain !== s.registrable && eligible(t);
    const found = (target: Target, kind: LookalikeKind, how: string): LookalikeMatch => ({ sender: s.unicode, target, kind, how });
    const suffixNote = (t: Target) =>
      t.domain.slice(t.domain.indexOf('.')) === s.registrable.slice(s.registrable.indexOf('.')) ? '' : ', under another suffix';

    // one skeleton: the same name elsewhere, confusable letters, a hyphen
    for (const t of this.byCanon.get(s.canon) ?? []) {
      if (!ok(t)) continue;
      if (t.label === s.label) {
        if (t.length >= MIN_NAME && kinds.suffix) return found(t, 'suffix', `the same name under another public suffix`);
      } else if (t.label.replace(/-/g, '') === s.label.replace(/-/g, '')) {
        return found(t, 'hyphen', `a hyphen ${s.label.includes('-') ? 'inserted' : 'removed'}${suffixNote(t)}`);
      } else {
        return found(t, 'confusable', `letters that look alike${s.idn ? ` in an IDN (${s.unicode})` : ''}${suffixNote(t)}`);
      }
    }
    // a generic word (or two) added before or after
    for (const [rest, words] of strippedWords(s.canon)) {
      for (const t of this.byCanon.get(rest) ?? []) {
        if (ok(t) && t.canon.length >= 3 && !GENERIC.has(t.canon)) return found(t, 'word', `"${words.join('", "')}" added${suffixNote(t)}`);
      }
    }
    // the whole domain written into the name: example.co.jp.evil.test, example-co-jp.evil.test, example-co-jp.test
    const labels = s.subdomain ? s.subdomain.split('.') : [];
    const written = [...labels.flatMap((l, i) => [labels.slice(i).join('.'), l.replace(/-/g, '.')]), s.label.replace(/-/g, '.')];
    for (const candidate of written) {
      const t = this.byDomain.get(candidate);
      if (t && ok(t)) return found(t, 'embedded', `${t.domain} written into the name`);
    }
    if (!kinds.edit) return null;
    // neighbouring letters swapped (in the letter skeleton: next to an `m`, a swap is none in the folded one)
    const letters = [...s.letters];
    for (let i = 0; i + 1 < letters.length; i++) {
      if (letters[i] === letters[i + 1]) continue;
      const swapped = [...letters.slice(0, i), letters[i + 1], letters[i], ...letters.slice(i + 2)].join('');
      for (const t of this.byLetters.get(swapped) ?? []) {
        if (ok(t) && editBudget(Math.min(t.length, s.length)) >= 1) return found(t, 'edit', `two letters swapped${suffixNote(t)}`);
      }
    }
    // a few letters changed, added or dropped
    let best: { t: Target; d: number } | undefined;
    for (const form of ['canon', 'letters'] as const) {
      const map = form === 'canon' ? this.byCanon : this.byLetters;
      for (const near of [...this.near[form][0].search(s[form]), ...this.near[form][1].search(s[form])]) {
        const d = distance(s[form], near);
        if (d === 0 || d > editBudget(s.length)) continue;
        for (const t of map.get(near) ?? []) {
          if (ok(t) && d <= editBudget(Math.min(t.length, s.length)) && (!best || d < best.d)) best = { t, d };
        }
      }
    }
    return best ? found(best.t, 'edit', `${best.d} letter${best.d > 1 ? 's' : ''} changed${suffixNote(best.t)}`) : null;
  }
}

/** `examplejpmail` → [`examplejp`, [mail]], [`example`, [jp, mail]] ...: up to two generic words off either end. */
function strippedWords(canon: string): [string, string[]][] {
  const out: [string, string[]][] = [];
  const strip = (rest: string, words: string[]) => {
    if (words.length === 2) return;
    for (const { word, canon: w } of WORDS) {
      if (rest.length - w.length < 3) continue;
      if (rest.endsWith(w)) {
        out.push([rest.slice(0, -w.length), [...words, word]]);
        strip(rest.slice(0, -w.length), [...words, word]);
      }
      if (rest.startsWith(w)) {
        out.push([rest.slice(w.length), [word, ...words]]);
        strip(rest.slice(w.length), [word, ...words]);
      }
    }
  };
  strip(canon, []);
  return out;
}
