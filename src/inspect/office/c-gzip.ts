// gzip (`invoice.doc.gz`, `.tgz`): inflated with node:zlib under a hard output cap (the smaller of
// the bytes left in the budget and the ratio limit), so a gzip bomb stops at the cap. gunzip writes
// concatenated members out as one file, and that file is what a user gets: it is scanned whole. When
// there are several members each is scanned on its own as well, so a harmless first member cannot
// hide a document that starts in the second.
import { inflateRaw, type ZlibOptions } from 'node:zlib';
import type { Finding } from '../finding.js';
import { child, type BlobScanner, type ScanContext } from './types.js';
import { corruptFinding, errorText, limitFinding, spendBytes } from './c-util.js';

/** inflateRaw with `info: true`: the output and how many input bytes the deflate stream took. */
function inflateRawInfo(input: Buffer, maxOutputLength: number): Promise<InflateInfo> {
  const options: ZlibOptions & { info: true } = { info: true, maxOutputLength };
  return new Promise((resolve, reject) => {
    inflateRaw(input, options, (e, r) => (e ? reject(e) : resolve(r as unknown as InflateInfo)));
  });
}

interface InflateInfo {
  buffer: Buffer;
  engine: { bytesWritten: number };
}

/** Below this many decompressed bytes the ratio limit does not apply (as for zip). */
const RATIO_FLOOR = 1024 * 1024;
const MAX_MEMBERS = 64;

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

interface Member {
  name?: string;
  data: Buffer;
}

/** Offset of the deflate data after a member header at `p`, and the stored file name. */
function parseHeader(b: Buffer, p: number): { data: number; name?: string } {
  if (b.length < p + 10 || b[p] !== 0x1f || b[p + 1] !== 0x8b || b[p + 2] !== 8) throw new Error('not a gzip member header');
  const flags = b[p + 3];
  let q = p + 10;
  if (flags & FEXTRA) q += 2 + b.readUInt16LE(q);
  let name: string | undefined;
  if (flags & FNAME) {
    const end = b.indexOf(0, q);
    if (end < 0) throw new Error('unterminated file name');
    name = b.toString('latin1', q, end);
    q = end + 1;
  }
  if (flags & FCOMMENT) {
    const end = b.indexOf(0, q);
    if (end < 0) throw new Error('unterminated comment');
    q = end + 1;
  }
  if (flags & FHCRC) q += 2;
  if (q > b.length) throw new Error('truncated header');
  return { data: q, name };
}

class Capped extends Error {}

/** The name a gunzip tool gives the output: the stored name, else the archive's name without .gz. */
function outputName(ctx: ScanContext, stored: string | undefined): string {
  if (stored) return stored.replace(/^.*[\\/]/, '');
  const declared = ctx.declared?.filename ?? ctx.path.at(-1) ?? '';
  if (/\.tgz$/i.test(declared)) return declared.replace(/\.tgz$/i, '.tar');
  if (/\.(gz|gzip|z)$/i.test(declared)) return declared.replace(/\.(gz|gzip|z)$/i, '');
  return 'gzip-content';
}

export async function scanGzip(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const findings: Finding[] = [];
  const cap = Math.min(ctx.budget.bytesLeft, Math.max(RATIO_FLOOR, bytes.length * ctx.limits.maxRatio));
  const members: Member[] = [];
  let total = 0;
  let p = 0;
  let problem: Finding | undefined;
  try {
    while (p < bytes.length && members.length < MAX_MEMBERS) {
      // trailing zero padding after the last member is common (tape blocks): not a member
      if (members.length > 0 && bytes.subarray(p).every((x) => x === 0)) break;
      const head = parseHeader(bytes, p);
      if (ctx.budget.entriesLeft <= 0) {
        problem = limitFinding(ctx, `entry budget of ${ctx.limits.maxEntries} exhausted`);
        break;
      }
      ctx.budget.entriesLeft--;
      let r: InflateInfo;
      try {
        r = await inflateRawInfo(bytes.subarray(head.data), Math.max(1, cap - total));
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new Capped();
        throw e;
      }
      total += r.buffer.length;
      members.push({ name: head.name, data: r.buffer });
      p = head.data + r.engine.bytesWritten + 8;
    }
    if (p < bytes.length && members.length >= MAX_MEMBERS) problem = limitFinding(ctx, `more than ${MAX_MEMBERS} gzip members`);
  } catch (e) {
    if (e instanceof Capped) {
      const byBudget = cap === ctx.budget.bytesLeft;
      spendBytes(ctx, cap);
      return [
        limitFinding(
          ctx,
          byBudget ? `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted` : `gzip inflates beyond ${ctx.limits.maxRatio}x its compressed size`,
        ),
      ];
    }
    if (members.length === 0) return [corruptFinding(ctx, `gzip unreadable: ${errorText(e)}`)];
    problem = corruptFinding(ctx, `gzip member ${members.length + 1} unreadable: ${errorText(e)}`);
  }
  if (!spendBytes(ctx, total)) return [limitFinding(ctx, `decompressed-bytes budget of ${ctx.limits.maxBytes} exhausted`)];
  const whole = members.length === 1 ? members[0].data : Buffer.concat(members.map((m) => m.data));
  const name = outputName(ctx, members[0]?.name);
  if (members.length > 1) {
    for (const [i, m] of members.entries()) {
      const memberName = `${m.name ? outputName(ctx, m.name) : name}#member${i + 1}`;
      findings.push(...(await scanBlob(m.data, { ...child(ctx, memberName), declared: { filename: m.name ?? name } })));
    }
  }
  findings.push(...(await scanBlob(whole, { ...child(ctx, name), declared: { filename: name } })));
  if (problem) findings.push(problem);
  return members.length > 1 ? dedupe(findings, ctx.path.length) : findings;
}

/**
 * The same finding reached through a member and through the whole output (the same document at the
 * same place inside them): reported once, with the member's more precise path.
 */
function dedupe(findings: Finding[], depth: number): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const inside = (f.part ?? '')
      .split(' > ')
      .slice(depth + 1)
      .join(' > ');
    const key = `${f.symbol}\0${f.detail ?? ''}\0${inside}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
