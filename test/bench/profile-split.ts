// Where a gateway's CPU goes, from a V8 CPU profile (`node --cpu-prof`): the busy time split into
// the two SMTP legs (smtp-server, the gateway's session code, the relay client, socket system calls
// and the event loop's I/O), the inspection (every analyzer, the MIME pass, the thread memory and
// the rates), garbage collection and the rest. Each sample counts for the project's own frame
// nearest to it (a library or node:crypto called by an analyzer counts as inspection); a sample
// with no project frame above it counts for its library, or as I/O when it has none either.
//
//   node dist/test/bench/profile-split.js FILE.cpuprofile [MESSAGES]
//
// `npm run bench` prints this split itself when BENCH_NODE_ARGS has --cpu-prof-dir.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export type Share = 'SMTP legs' | 'inspection' | 'garbage collection' | 'other';
export interface Split {
  busyMs: number;
  byShare: Record<Share, number>;
  /** the project directories and libraries within each share, ms */
  detail: Map<string, number>;
}

const LEGS = /^(src\/(gateway|relay)\/|src\/message\/spool|nm\/smtp-server|io$)/;
const INSPECTION =
  /^(src\/(inspect|state|rate|message)\/|src\/(pipeline|verdict)\.js|nm\/(@zone-eu\/mailsplit|libmime|libqp|libbase64|tldts|mailauth|mailparser|punycode\.js|iconv-lite|encoding-japanese|leven|mnemonist|entities|dns-packet)$)/;

/** The project file or library a frame belongs to (`src/inspect/mime/walk.js`, `nm/libmime`), or undefined for node's own. */
function owner(url: string): string | undefined {
  const src = url.lastIndexOf('/dist/src/');
  if (src >= 0) return 'src/' + url.slice(src + '/dist/src/'.length);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm < 0) return undefined;
  const parts = url.slice(nm + '/node_modules/'.length).split('/');
  return 'nm/' + (parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]);
}

export function splitProfile(file: string): Split {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + profile.timeDeltas[i]));

  const byShare: Record<Share, number> = { 'SMTP legs': 0, inspection: 0, 'garbage collection': 0, other: 0 };
  const detail = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const name = byId.get(id)!.callFrame.functionName;
    if (name === '(idle)' || name === '(program)' || name === '(root)') continue;
    busyUs += us;
    let where: string;
    if (name === '(garbage collector)') where = 'gc';
    else {
      let project: string | undefined;
      let library: string | undefined;
      for (let cur: number | undefined = id; cur !== undefined && !project; cur = parent.get(cur)) {
        const o = owner(byId.get(cur)!.callFrame.url);
        if (o?.startsWith('src/')) project = o;
        else if (o && !library) library = o;
      }
      where = project ?? library ?? 'io';
    }
    const share: Share = where === 'gc' ? 'garbage collection' : LEGS.test(where) ? 'SMTP legs' : INSPECTION.test(where) ? 'inspection' : 'other';
    byShare[share] += us / 1000;
    const key = `${share}: ${where.startsWith('src/') ? path.dirname(where) : where}`;
    detail.set(key, (detail.get(key) ?? 0) + us / 1000);
  }
  return { busyMs: busyUs / 1000, byShare, detail };
}

/** The newest .cpuprofile in a directory. */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/** The split as lines to print; with `cpuMsPerMessage`, each share also as CPU per message. */
export function formatSplit(split: Split, cpuMsPerMessage?: number): string[] {
  const lines: string[] = [];
  for (const [share, ms] of Object.entries(split.byShare)) {
    const fraction = ms / split.busyMs;
    const per = cpuMsPerMessage === undefined ? '' : `, ~${(fraction * cpuMsPerMessage).toFixed(3)} ms per message`;
    lines.push(`  ${share.padEnd(20)} ${(fraction * 100).toFixed(1).padStart(5)}% of busy CPU${per}`);
    const parts = [...split.detail]
      .filter(([key]) => key.startsWith(`${share}: `))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([key, partMs]) => `${key.slice(share.length + 2)} ${((partMs / split.busyMs) * 100).toFixed(1)}%`);
    if (parts.length) lines.push(`      ${parts.join(', ')}`);
  }
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, messages] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/test/bench/profile-split.js FILE.cpuprofile [MESSAGES]');
    process.exit(2);
  }
  const split = splitProfile(file);
  console.log(`busy CPU ${split.busyMs.toFixed(0)} ms${messages ? `, ${(split.busyMs / Number(messages)).toFixed(3)} ms per message` : ''}`);
  for (const line of formatSplit(split, messages ? split.busyMs / Number(messages) : undefined)) console.log(line);
}
