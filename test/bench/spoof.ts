// Added latency of the reply-chain spoofing checks per message: the inspect stage with spoof on vs
// off over a mix of fixture replies (hijacks and genuine, en/ja, text/html), with warm Redis thread
// memory and cached DNS (authentication on, through the caching resolver over an in-process zone).
// `npm run bench:spoof` (needs Redis at MAILMOAT_TEST_REDIS_URL or 127.0.0.1:6379). Three runs, the
// median of each figure printed. Figures only.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { cachingResolver } from '../../src/inspect/spoof/auth.js';
import type { StateBackend } from '../../src/state/index.js';
import { runCase, testPolicy } from '../fixtures/mail/run.js';
import { FIXTURE_ZONE, genuine, GENUINE_SHAPES, hijack, HIJACK_SHAPES, type Case } from '../fixtures/mail/threads.js';
import { zoneResolver } from '../fixtures/mail/zone.js';

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const RUNS = 3;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const redis = new Redis(process.env.MAILMOAT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, enableOfflineQueue: false });
  await redis.connect();
  const prefix = `bench:spoof:${randomBytes(4).toString('hex')}:`;
  const state: StateBackend = { kind: 'redis', redis, failMode: 'open' };
  const resolver = cachingResolver(zoneResolver(FIXTURE_ZONE), 2000);
  const on = testPolicy({ spoof: { keyPrefix: prefix, authentication: process.env.AUTH !== 'off' } });
  const off = testPolicy({ spoof: { enabled: false } });
  const cases: Case[] = [];
  for (const lang of ['en', 'ja'] as const) {
    for (const format of ['text', 'html'] as const) {
      for (const s of HIJACK_SHAPES) cases.push(hijack(s, lang, format));
      for (const s of GENUINE_SHAPES) cases.push(genuine(s, lang, format));
    }
  }
  // warm up: JIT, Redis connection, DNS cache
  for (const c of cases) {
    await runCase(c, on, { state, resolver });
    await runCase(c, off, {});
  }
  // three runs, each its own p50 and p99; the median of each is the figure (the machine is shared)
  const runs: { p50: number; p99: number; full50: number; full99: number }[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const added: number[] = [];
    const withSpoof: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of cases) {
        let t = process.hrtime.bigint();
        await runCase(c, off, {});
        const base = Number(process.hrtime.bigint() - t) / 1e6;
        t = process.hrtime.bigint();
        await runCase(c, on, { state, resolver });
        const full = Number(process.hrtime.bigint() - t) / 1e6;
        withSpoof.push(full);
        added.push(full - base);
      }
    }
    added.sort((a, b) => a - b);
    withSpoof.sort((a, b) => a - b);
    const figures = { p50: pct(added, 50), p99: pct(added, 99), full50: pct(withSpoof, 50), full99: pct(withSpoof, 99) };
    runs.push(figures);
    console.log(
      `  run ${run}: ${added.length} messages (${cases.length} fixtures x ${ROUNDS}): inspect with spoof p50 ${figures.full50.toFixed(2)} ms, p99 ${figures.full99.toFixed(2)} ms; ` +
        `added p50 ${figures.p50.toFixed(2)} ms, p99 ${figures.p99.toFixed(2)} ms`,
    );
  }
  const median = (key: keyof (typeof runs)[number]) => runs.map((r) => r[key]).sort((a, b) => a - b)[RUNS >> 1];
  console.log(`median of ${RUNS} runs, warm Redis, cached DNS, authentication ${process.env.AUTH === 'off' ? 'off' : 'on'}:`);
  console.log(`  inspect with spoof: p50 ${median('full50').toFixed(2)} ms, p99 ${median('full99').toFixed(2)} ms`);
  const p50 = median('p50');
  console.log(
    `  added by spoof (vs spoof.enabled=false; the MIME walk runs in both): p50 ${p50.toFixed(2)} ms (target <= 3 ms: ${p50 <= 3 ? 'met' : 'NOT met'}), p99 ${median('p99').toFixed(2)} ms`,
  );
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
}

await main();
