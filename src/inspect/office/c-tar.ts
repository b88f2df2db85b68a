// tar (and, through c-gzip, .tar.gz / .tgz): every regular file goes back through the engine.
// Library: tar-stream, the streaming tar parser most of npm's own tooling builds on; it reads ustar,
// GNU long names and pax headers, which a hand-written reader would get subtly wrong. A tar stores
// its members uncompressed, so a member is never bigger than the attachment; each still spends one
// entry and its bytes from the budget, and its declared size is checked before it is read.
import { extract, type Header } from 'tar-stream';
import type { Finding } from '../finding.js';
import { child, type BlobScanner, type ScanContext } from './types.js';
import { budgetExceeded, corruptFinding, errorText, limitFinding, spendBytes } from './c-util.js';

interface Member {
  name: string;
  data: Buffer;
}

class Stop extends Error {
  constructor(readonly finding: Finding) {
    super(finding.detail);
  }
}

/** Reads the members (bounded by the budget), then scans them: the parser is not held open across scans. */
async function readMembers(bytes: Buffer, ctx: ScanContext): Promise<{ members: Member[]; problem?: Finding }> {
  const members: Member[] = [];
  // v7 tars have no ustar magic (the types do not list the option: passed as a plain object)
  const options: object = { allowUnknownFormat: true, filenameEncoding: 'utf-8' };
  const parser = extract(options);
  const reading = (async () => {
    for await (const entry of parser) {
      const h: Header = entry.header;
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        entry.resume();
        continue;
      }
      const over = budgetExceeded(ctx);
      if (over) throw new Stop(limitFinding(ctx, over, h.name));
      if (ctx.budget.entriesLeft <= 0) throw new Stop(limitFinding(ctx, `entry budget of ${ctx.limits.maxEntries} exhausted`, h.name));
      ctx.budget.entriesLeft--;
      const size = h.size ?? 0;
      if (!spendBytes(ctx, size)) throw new Stop(limitFinding(ctx, `entry declares ${size} bytes, more than the budget has left`, h.name));
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      members.push({ name: h.name, data: Buffer.concat(chunks) });
    }
  })();
  parser.end(bytes);
  try {
    await reading;
    return { members };
  } catch (e) {
    parser.destroy();
    if (e instanceof Stop) return { members, problem: e.finding };
    return { members, problem: corruptFinding(ctx, `tar unreadable${members.length ? ` after ${members.length} member(s)` : ''}: ${errorText(e)}`) };
  }
}

export async function scanTar(bytes: Buffer, ctx: ScanContext, scanBlob: BlobScanner): Promise<Finding[]> {
  const { members, problem } = await readMembers(bytes, ctx);
  const findings: Finding[] = [];
  for (const m of members) {
    findings.push(...(await scanBlob(m.data, { ...child(ctx, m.name), declared: { filename: m.name } })));
  }
  if (problem) findings.push(problem);
  return findings;
}
