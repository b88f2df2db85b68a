// `npm run eval:threads`: the generated business-thread corpus (test/fixtures/threads/) replayed
// through one running gateway per protected organisation (test/helpers/thread-replay.ts), with a
// local DNS server on loopback serving the corpus zone, and again with DNS unreachable. Prints per
// hijack shape and per genuine kind, per language: flagged (tag or quarantine) and quarantined by
// the verdict, and the same counted by the spoof symbols alone (SPOOF_SUSPECT / SPOOF_HIJACK);
// then eval:mail-style totals. Figures only: not part of `npm test`.
//   --seed N        another corpus (default 12)
//   --org KEY       one organisation (sakura, northwind, tokai)
//   --no-dns        only the run with DNS unreachable; --dns-only: only the run with DNS
//   --scale F       conversations and hijacks per organisation x F (default 1)
//   --verbose       every miss and every flagged genuine message, with its symbols; hijacks per variant
import { generateCorpus, GENUINE_SHAPES, HIJACK_SHAPES, type GeneratedMessage } from '../fixtures/threads/corpus.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { replayOrganisation, type ReplayedMessage } from '../helpers/thread-replay.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const seed = Number(option('--seed') ?? 12);
const scale = Number(option('--scale') ?? 1);
const only = option('--org');
const verbose = args.includes('--verbose');
const modes: ('dns' | 'no-dns')[] = args.includes('--no-dns') ? ['no-dns'] : args.includes('--dns-only') ? ['dns'] : ['dns', 'no-dns'];

const FLAGGED = new Set(['tag', 'quarantine', 'reject', 'defer']);
const isFlagged = (r: ReplayedMessage) => FLAGGED.has(r.verdict);
const isHeld = (r: ReplayedMessage) => r.verdict === 'quarantine' || r.verdict === 'reject';
const live = (r: ReplayedMessage) => r.findings.filter((f) => !f.excepted);
const spoofFlagged = (r: ReplayedMessage) => live(r).some((f) => f.symbol === 'SPOOF_SUSPECT' || f.symbol === 'SPOOF_HIJACK');
const spoofHeld = (r: ReplayedMessage) => live(r).some((f) => f.symbol === 'SPOOF_HIJACK');
const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)}%` : '-').padStart(7);
const symbolsOf = (r: ReplayedMessage) =>
  live(r)
    .filter((f) => f.score !== 0 || /HIJACK|SUSPECT|TEMPERROR|UNAVAILABLE/.test(f.symbol))
    .map((f) => `${f.symbol}(${f.score})`)
    .join(' ');

interface Row {
  label: string;
  results: ReplayedMessage[];
}

function rowLine(row: Row): string {
  const r = row.results;
  const c = (f: (x: ReplayedMessage) => boolean) => r.filter(f).length;
  return `  ${row.label.padEnd(34)}${String(r.length).padStart(6)} ${pct(c(isFlagged), r.length)} ${pct(c(isHeld), r.length)}   | ${pct(c(spoofFlagged), r.length)} ${pct(c(spoofHeld), r.length)}`;
}

function rows(results: ReplayedMessage[], kind: 'hijack' | 'genuine'): Row[] {
  const out: Row[] = [];
  const shapes: readonly string[] = kind === 'hijack' ? HIJACK_SHAPES : GENUINE_SHAPES;
  for (const shape of shapes) {
    const mine = results.filter((r) => r.message.label.kind === kind && r.message.label.shape === shape);
    if (!mine.length) continue;
    out.push({ label: shape, results: mine });
    for (const lang of ['ja', 'en'] as const) {
      const l = mine.filter((r) => r.message.label.lang === lang);
      if (l.length && l.length !== mine.length) out.push({ label: `  ${lang}`, results: l });
    }
  }
  return out;
}

function table(title: string, results: ReplayedMessage[]): void {
  const header = `${''.padEnd(36)}${'n'.padStart(6)} ${'flagged'.padStart(7)} ${'quarant'.padStart(7)}   | ${'spoof:f'.padStart(7)} ${'spoof:q'.padStart(7)}`;
  console.log(`\n${title}`);
  console.log(header);
  const hijacks = results.filter((r) => r.message.label.kind === 'hijack');
  console.log('hijacks');
  for (const row of rows(results, 'hijack')) console.log(rowLine(row));
  console.log(rowLine({ label: 'all hijacks', results: hijacks }));
  for (const lang of ['ja', 'en'] as const) console.log(rowLine({ label: `  ${lang}`, results: hijacks.filter((r) => r.message.label.lang === lang) }));
  const genuine = results.filter((r) => r.message.label.kind === 'genuine');
  console.log('genuine');
  for (const row of rows(results, 'genuine')) console.log(rowLine(row));
  const inbound = genuine.filter((r) => r.message.direction === 'inbound');
  console.log(rowLine({ label: 'all genuine inbound', results: inbound }));
  for (const lang of ['ja', 'en'] as const) console.log(rowLine({ label: `  ${lang}`, results: inbound.filter((r) => r.message.label.lang === lang) }));
  console.log(rowLine({ label: 'all genuine (outbound too)', results: genuine }));
  const zips = genuine.filter((r) => r.message.label.role === 'zip' && r.quarantineId);
  if (zips.length) {
    const released = zips.filter((r) => r.finalState === 'released').length;
    console.log(`  PPAP zips held at receipt: ${zips.length}; released by the end of the replay: ${released}`);
  }
  // a PPAP zip is held until its password mail opens it (issue 12 §7, by design); the other genuine
  // inbound mail is what the targets (at most 0.5% tagged, none quarantined) are about
  const awaitedPassword = (r: ReplayedMessage) => r.message.label.role === 'zip' && r.finalState === 'released';
  const rest = inbound.filter((r) => !awaitedPassword(r));
  const flagged = rest.filter(isFlagged).length;
  const held = rest.filter(isHeld).length;
  console.log(
    `  genuine inbound besides PPAP zips held for their password and released by it (${inbound.length - rest.length}): ${rest.length}; flagged ${flagged} = ${pct(flagged, rest.length).trim()}, quarantined ${held} = ${pct(held, rest.length).trim()}`,
  );
}

function totals(results: ReplayedMessage[]): void {
  for (const kind of ['genuine', 'hijack'] as const) {
    const mine = results.filter((r) => r.message.label.kind === kind);
    const flagged = mine.filter(isFlagged).length;
    const held = mine.filter(isHeld).length;
    console.log(
      `${kind}: ${mine.length} messages; flagged (tag or quarantine) ${flagged} = ${pct(flagged, mine.length).trim()}; quarantine ${held} = ${pct(held, mine.length).trim()}`,
    );
    const counts = new Map<string, number>();
    for (const r of mine)
      for (const f of live(r)) if (/^(SPOOF_|AUTH_|STATE_|ARCHIVE_|OFFICE_)/.test(f.symbol)) counts.set(f.symbol, (counts.get(f.symbol) ?? 0) + 1);
    console.log(
      `  symbols: ${
        [...counts]
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }`,
    );
  }
}

function describe(r: ReplayedMessage): string {
  const m = r.message;
  const l = m.label;
  const from = /^From:[ \t]*((?:.*)(?:\r\n[ \t].*)*)/im.exec(m.raw.toString('latin1').split('\r\n\r\n')[0])?.[1]?.replace(/\r\n[ \t]+/g, ' ') ?? '';
  return `  ${m.org}#${m.seq} ${l.shape}${'variant' in l && l.variant ? ` [${l.variant}]` : ''} ${l.lang}${'payload' in l ? ` payload=${l.payload} quote=${l.quote}` : ''}${l.role ? ` ${l.role}` : ''}: ${r.verdict} score=${r.score}\n      From: ${from.slice(0, 140)}\n      envelope ${m.envelope.mailFrom} client ${m.client.address} | ${symbolsOf(r) || 'no symbols'}`;
}

function details(results: ReplayedMessage[]): void {
  const misses = results.filter((r) => r.message.label.kind === 'hijack' && !isFlagged(r));
  console.log(`\nmissed hijacks (${misses.length}):`);
  for (const r of misses) console.log(describe(r));
  const fps = results.filter((r) => r.message.label.kind === 'genuine' && isFlagged(r));
  console.log(`\nflagged genuine messages (${fps.length}):`);
  for (const r of fps) console.log(describe(r));
  console.log('\nhijacks per variant (n, flagged, quarantined):');
  const byVariant = new Map<string, ReplayedMessage[]>();
  for (const r of results.filter((x) => x.message.label.kind === 'hijack')) {
    const l = r.message.label as Extract<GeneratedMessage['label'], { kind: 'hijack' }>;
    const key = `${l.shape} / ${l.variant.split(' ')[0]}${l.shape === 'lookalike-domain' ? ` / quote ${l.quote}` : ''}`;
    byVariant.set(key, [...(byVariant.get(key) ?? []), r]);
  }
  for (const [key, rs] of [...byVariant].sort())
    console.log(
      `  ${key.padEnd(48)}${String(rs.length).padStart(5)} ${pct(rs.filter(isFlagged).length, rs.length)} ${pct(rs.filter(isHeld).length, rs.length)}`,
    );
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const corpus = await generateCorpus({ seed, threads: Math.round(130 * scale), hijacks: Math.round(150 * scale), ...(only ? { only: [only] } : {}) });
  const generated = Date.now() - t0;
  const dns = await startDnsServer(corpus.zone);
  console.log(
    `eval:threads seed=${seed}: ${corpus.messages.length} messages for ${corpus.orgs.map((o) => o.key).join(', ')} (generated in ${(generated / 1000).toFixed(1)} s); zone of ${Object.keys(corpus.zone).length} names on ${dns.address}, the gateway's dns.servers`,
  );
  try {
    for (const mode of modes) {
      const started = Date.now();
      const results: ReplayedMessage[] = [];
      for (const org of corpus.orgs) {
        const mine = corpus.messages.filter((m) => m.org === org.key);
        results.push(...(await replayOrganisation(org, mine, { dns: mode === 'dns' ? [dns.address] : 'unreachable' })));
      }
      const seconds = (Date.now() - started) / 1000;
      const errors = results.filter((r) => r.verdict === 'error' || !r.reply.startsWith('250'));
      table(
        `== ${mode === 'dns' ? `DNS: local server ${dns.address}` : 'DNS unreachable'} — ${results.length} messages in ${seconds.toFixed(0)} s (${(results.length / seconds).toFixed(0)} msg/s)`,
        results,
      );
      if (errors.length) {
        console.log(`  not accepted with 250 (${errors.length}):`);
        for (const r of errors.slice(0, 10)) console.log(`    ${r.message.org}#${r.message.seq} ${r.reply}`);
      }
      console.log('');
      totals(results);
      if (verbose) details(results);
    }
  } finally {
    await dns.close();
  }
}

await main();
