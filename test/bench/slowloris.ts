// npm run bench:slowloris — the slowloris of issue 11 against a real gateway process with the default
// policy (as an MX: xforwardHosts empty, so the attacker is a direct client), a recording downstream
// in this process, and an ordinary client from another loopback address. Prints whether and how fast
// the ordinary client is served while the attack runs, and how long the attacker held its slots.
//
// Attackers drip one byte every SLOWLORIS_DRIP_MS (default 4000) of "EHLO ...\r\n" then "NOOP\r\n"
// lines, forever. Scenarios:
//   1. the issue's attack: 20 connections from one address;
//   2. more connections than maxClients (250) from one address;
//   3. 250 connections from 25 addresses (all 200 slots), each reconnecting as soon as it is cut;
//   4. the same with the connection bounds turned off: what the gateway did before them;
//   5. 250 connections from 250 addresses, one each, reconnecting: the hardest case for fairness.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RawClient } from '../helpers/raw-client.js';
import { freePort } from '../helpers/global.js';
import { startSink, type Sink } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const gatewayMain = path.resolve(here, '../../src/cli/main.js');
const DRIP_MS = Number(process.env.SLOWLORIS_DRIP_MS ?? 4000);
/** how long the ordinary client keeps trying in the scenarios where slots are all taken */
const PATIENCE_MS = Number(process.env.SLOWLORIS_PATIENCE_MS ?? 90_000);

const BOUNDS_OFF = [
  'timeouts.command=0',
  'timeouts.data=0',
  'limits.minDataRate=0',
  'limits.maxClientsPerIp=null',
  'limits.maxJunkCommands=null',
  'timeouts.stalledWhenFull=0',
];

interface Running {
  port: number;
  events: Map<string, number>;
  stop(): Promise<void>;
}

async function startGateway(sink: Sink, overrides: string[]): Promise<Running> {
  const port = await freePort();
  const workdir = mkdtempSync(path.join(tmpdir(), 'mailmoat-bench-slowloris-'));
  const args = [gatewayMain, 'serve', '--listen', `127.0.0.1:${port}`, '--downstream', `127.0.0.1:${sink.port}`];
  for (const o of ['xforwardHosts=[]', 'log.level=warn', ...overrides]) args.push('--set', o);
  const child: ChildProcess = spawn(process.execPath, args, { cwd: workdir, stdio: ['ignore', 'pipe', 'inherit'] });
  const events = new Map<string, number>();
  let pending = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    let eol: number;
    while ((eol = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, eol);
      pending = pending.slice(eol + 1);
      try {
        const { event = '?', bound } = JSON.parse(line) as { event?: string; bound?: string };
        const key = bound ? `${event}:${bound}` : event;
        events.set(key, (events.get(key) ?? 0) + 1);
      } catch {
        // not a log line
      }
    }
  });
  for (let i = 0; i < 100; i++) {
    try {
      const probe = await RawClient.connect(port, '127.0.0.3', 1000);
      probe.close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    events,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** One attacking connection: drips until cut; `reconnect` starts again at once. */
class Attacker {
  /** ms this attacker held a slot, over all its connections; the longest single connection */
  held = 0;
  longest = 0;
  refused = 0;
  /** the server's last reply on each connection it closed */
  cuts: string[] = [];
  /** a connection of this attacker is open now */
  active = false;
  private stopped = false;
  private client: RawClient | undefined;
  readonly done: Promise<void>;

  constructor(
    port: number,
    from: string,
    private readonly reconnect: boolean,
  ) {
    this.done = this.run(port, from);
  }

  private async run(port: number, from: string): Promise<void> {
    do {
      let client: RawClient;
      try {
        client = await RawClient.connect(port, from, 10_000);
      } catch {
        this.refused++;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      this.client = client;
      if (!client.greeting.startsWith('220 ')) {
        this.refused++;
        client.close();
        if (this.reconnect) await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const started = Date.now();
      this.active = true;
      await client.drip('EHLO attacker.example\r\n', DRIP_MS);
      while (!client.closed && !this.stopped) await client.drip('NOOP\r\n', DRIP_MS);
      const hold = (client.closed ? client.closedAt : Date.now()) - started;
      this.held += hold;
      this.longest = Math.max(this.longest, hold);
      this.active = false;
      if (client.closed && !this.stopped) this.cuts.push(client.last.slice(0, 9));
    } while (this.reconnect && !this.stopped);
  }

  stop(): void {
    this.stopped = true;
    this.client?.close();
  }
}

/** The ordinary client: connect, send one message. ms to its 250, or the reply that stopped it. */
async function ordinary(port: number): Promise<{ ok: boolean; ms: number; reply: string }> {
  const started = Date.now();
  let client: RawClient;
  try {
    client = await RawClient.connect(port, '127.0.0.2', 10_000);
  } catch (err) {
    return { ok: false, ms: Date.now() - started, reply: (err as Error).message };
  }
  try {
    if (!client.greeting.startsWith('220 ')) return { ok: false, ms: Date.now() - started, reply: client.greeting };
    for (const line of ['EHLO ordinary.example', 'MAIL FROM:<alice@internal.test>', 'RCPT TO:<bob@outside.test>', 'DATA']) {
      const reply = await client.command(line);
      if (!/^[23]/.test(reply)) return { ok: false, ms: Date.now() - started, reply };
    }
    const count = client.replies.length;
    client.write(Buffer.concat([messages.simpleMessage('ordinary'), Buffer.from('.\r\n')]));
    const reply = await client.reply(30_000, count);
    return { ok: reply.startsWith('250 '), ms: Date.now() - started, reply };
  } finally {
    client.close();
  }
}

/** Tries once a second until served or out of patience: time to the first 250, attempts. */
async function untilServed(port: number): Promise<{ servedAfter: number | undefined; attempts: number; lastRefusal: string; latency: number }> {
  const started = Date.now();
  let attempts = 0;
  let lastRefusal = '';
  while (Date.now() - started < PATIENCE_MS) {
    attempts++;
    const r = await ordinary(port);
    if (r.ok) return { servedAfter: Date.now() - started, attempts, lastRefusal, latency: r.ms };
    lastRefusal = r.reply;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return { servedAfter: undefined, attempts, lastRefusal, latency: 0 };
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function summarize(attackers: Attacker[]): string {
  const admitted = attackers.filter((a) => a.held > 0);
  const refused = attackers.reduce((n, a) => n + a.refused, 0);
  const cuts = new Map<string, number>();
  for (const a of attackers) for (const c of a.cuts) cuts.set(c, (cuts.get(c) ?? 0) + 1);
  const maxHold = Math.max(0, ...admitted.map((a) => a.longest));
  const connections = admitted.reduce((n, a) => n + Math.max(1, a.cuts.length), 0);
  return `attacker: ${connections} connections admitted, ${refused} refused; longest hold per connection ${s(maxHold)}; cut with ${[...cuts].map(([c, n]) => `${n}× ${c}`).join(', ') || 'nothing'}`;
}

function logSummary(gw: Running): string {
  return (
    [...gw.events]
      .filter(([k]) => k.startsWith('client_'))
      .map(([k, n]) => `${n} ${k}`)
      .join(', ') || 'no connection bound events'
  );
}

async function waitCut(attackers: Attacker[], timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline && attackers.some((a) => a.active)) await new Promise((r) => setTimeout(r, 200));
}

async function main(): Promise<void> {
  const sink = await startSink();
  console.log(`slowloris: one byte every ${DRIP_MS} ms per connection; gateway with policies/default.yaml as an MX (xforwardHosts: [])\n`);

  {
    console.log('1. the issue: 20 connections from 127.0.0.1, default limits');
    const gw = await startGateway(sink, []);
    const attackers = Array.from({ length: 20 }, () => new Attacker(gw.port, '127.0.0.1', false));
    await new Promise((r) => setTimeout(r, 5000));
    const r = await ordinary(gw.port);
    console.log(`   ordinary client from 127.0.0.2, 5 s into the attack: ${r.ok ? `served in ${r.ms} ms` : `NOT served: ${r.reply}`}`);
    await waitCut(attackers, 120_000);
    attackers.forEach((a) => a.stop());
    await Promise.all(attackers.map((a) => a.done));
    console.log(`   ${summarize(attackers)}`);
    await gw.stop();
  }

  {
    console.log('2. 250 connections from 127.0.0.1 (more than maxClients 200), default limits');
    const gw = await startGateway(sink, []);
    const attackers = Array.from({ length: 250 }, () => new Attacker(gw.port, '127.0.0.1', false));
    await new Promise((r) => setTimeout(r, 5000));
    const r = await ordinary(gw.port);
    console.log(`   ordinary client from 127.0.0.2, 5 s into the attack: ${r.ok ? `served in ${r.ms} ms` : `NOT served: ${r.reply}`}`);
    await waitCut(attackers, 120_000);
    attackers.forEach((a) => a.stop());
    await Promise.all(attackers.map((a) => a.done));
    console.log(`   ${summarize(attackers)}`);
    console.log(`   gateway log: ${logSummary(gw)}`);
    await gw.stop();
  }

  for (const [title, overrides, addresses] of [
    ['3. 250 connections from 25 addresses (127.0.1.1-25), reconnecting when cut, default limits', [], 25],
    ['4. the same with the connection bounds off (the gateway before this change)', BOUNDS_OFF, 25],
    ['5. 250 connections from 250 addresses (127.0.2.1-250), one each, reconnecting when cut, default limits', [], 250],
  ] as [string, string[], number][]) {
    console.log(title);
    const gw = await startGateway(sink, overrides);
    const attackers = Array.from({ length: 250 }, (_, i) => new Attacker(gw.port, `127.0.${addresses === 25 ? 1 : 2}.${(i % addresses) + 1}`, true));
    await new Promise((r) => setTimeout(r, 5000));
    const r = await untilServed(gw.port);
    console.log(
      r.servedAfter === undefined
        ? `   ordinary client from 127.0.0.2, trying once a second: NOT served in ${s(PATIENCE_MS)} (${r.attempts} attempts, last: ${r.lastRefusal})`
        : `   ordinary client from 127.0.0.2, trying once a second: served ${s(r.servedAfter)} after the attack was in place (${r.attempts} attempts; that message took ${r.latency} ms; refused before with: ${r.lastRefusal || 'nothing'})`,
    );
    if (r.servedAfter !== undefined) {
      // and later, through the attack's waves of cuts and reconnects: a message every 5 s for 45 s
      const later: number[] = [];
      for (let i = 0; i < 9; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5000));
        const again = await untilServed(gw.port);
        if (again.servedAfter !== undefined) later.push(again.servedAfter);
      }
      const worst = later.length ? Math.max(...later) : 0;
      console.log(`   then 9 more messages, 5 s apart: ${later.length} served, the slowest ${s(worst)} after its first try`);
    }
    console.log(`   gateway log: ${logSummary(gw)}`);
    attackers.forEach((a) => a.stop());
    await Promise.all(attackers.map((a) => a.done));
    console.log(`   ${summarize(attackers)}`);
    await gw.stop();
  }

  console.log(`\ndownstream received ${sink.messages.length} messages (the ordinary client's)`);
  await sink.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
