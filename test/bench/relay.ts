// Relay benchmark (`npm run bench`): Postfix's smtp-source against smtp-sink directly, through the
// gateway, through smtp-server alone (./smtp-server-alone.ts: accept and discard, no relay, no
// inspection: the ceiling of any gateway built on smtp-server) and through Haraka, the Node.js MTA, as
// a plain relay to the same sink (./haraka.ts: installed from the npm registry into a cache folder
// outside the project on first use; without the registry the row says so and the rest runs). Also the
// latency the gateway adds per message, measured with a small sequential SMTP client, and the CPU time
// (utime + stime from /proc) the gateway and Haraka spend per relayed message.
//
// The machine is shared and absolute msg/s swing by +-20%, so every figure that matters is a ratio
// measured within one round (each path run back to back under the same load), and the printed figure
// is the median over three rounds.
//
//   BENCH_ROUNDS=N     rounds (default 3)
//   BENCH_NODE_ARGS=.. node options for the gateway process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof";
//                      with --cpu-prof-dir the run ends with the profile split into the SMTP legs
//                      and the inspection (./profile-split.ts)
//   BENCH_MESSAGES=N   messages per one-per-connection run (default 5000); the -d runs send 2.5 x N.
//                      Each path first gets a warm-up of WARMUP messages: the gateway reaches its
//                      steady rate only once V8 has optimised its hot paths (a few thousand messages),
//                      and a long-running gateway is what the figure is about.
//
// Needs smtp-source and smtp-sink (Debian package postfix); without them it says so and exits 0.
// Exits non-zero only when something actually failed (a child died, smtp-source reported a protocol
// failure, a reply was not the one expected); missing a target is reported, not fatal.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient } from '../../src/relay/smtp-client.js';
import { connect, sendData, text } from '../helpers/client.js';
import { freePort } from '../helpers/global.js';
import { configureHaraka, HARAKA_VERSION, installHaraka } from './haraka.js';
import { formatSplit, newestProfile, splitProfile } from './profile-split.js';
import { smtpSource } from './smtp-source.js';

const SESSIONS = 20;
const MESSAGE_BYTES = 10240;
const WARMUP = 3000;
const LATENCY_MESSAGES = 300;
/** issue 14: ratios measured within one round, the median of ROUNDS rounds */
const TARGET = { haraka: 3.0, alone: 0.6, p99Ms: 5 };
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const FROM = 'sender@bench.test';
const TO = 'rcpt@bench.test';

const here = path.dirname(fileURLToPath(import.meta.url));
const gatewayMain = path.resolve(here, '../../src/cli/main.js');
const smtpServerAlone = path.resolve(here, 'smtp-server-alone.js');

function positiveInt(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** /usr/sbin/NAME, else NAME on PATH, else undefined. */
function findTool(name: string): string | undefined {
  const dirs = ['/usr/sbin', ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** A 10 KB message (headers + 76-character lines), CRLF line ends, no line starts with a dot. */
function benchMessage(bytes: number): string {
  const head =
    `From: <${FROM}>\r\nTo: <${TO}>\r\nSubject: mailmoat relay benchmark\r\n` +
    `Message-ID: <bench@bench.test>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789abcd\r\n';
  let body = '';
  while (head.length + body.length + line.length <= bytes) body += line;
  return head + body;
}

/** One message on its own connection; returns ms from connect to the 250 after the final dot. */
async function timedMessage(port: number, message: string): Promise<number> {
  const start = process.hrtime.bigint();
  // the project's own command-level client: the same client cost on both paths
  const smtp = await connect(port, 'bench.test');
  try {
    for (const command of [`MAIL FROM:<${FROM}>`, `RCPT TO:<${TO}>`]) {
      const reply = await smtp.command(command);
      if (reply.code !== 250) throw new Error(`${command}: ${text(reply)}`);
    }
    const done = await sendData(smtp, message);
    if (done.code !== 250) throw new Error(`end of data: ${text(done)}`);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    await smtp.quit();
    return elapsed;
  } finally {
    smtp.close();
  }
}

async function latencies(port: number, count: number): Promise<number[]> {
  const message = benchMessage(MESSAGE_BYTES);
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(await timedMessage(port, message));
  return times.sort((a, b) => a - b);
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Resolves once the port accepts a connection and greets with 220. */
async function waitForBanner(port: number, what: string, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before it was ready (${child.exitCode ?? child.signalCode})`);
    try {
      const smtp = await SmtpClient.connect({ host: '127.0.0.1', port, connectTimeout: 1000, commandTimeout: 2000 });
      smtp.close();
      if (smtp.greeting?.code === 220) return;
      last = `greeted with ${smtp.greeting?.code}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} on 127.0.0.1:${port} did not greet with 220 within ${timeoutMs} ms (${last})`);
}

// ---------------------------------------------------------------------------------------------------
// Children

const children: ChildProcess[] = [];

function start(command: string, args: string[], options: { cwd?: string } = {}): ChildProcess {
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const force = setTimeout(() => child.kill('SIGKILL'), 3000);
          child.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

interface Target {
  key: string;
  label: string;
  port: number;
  /** the process whose CPU time is counted per message */
  pid?: number;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads) from /proc/PID/stat, in ms. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name in parentheses: state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Haraka as a plain relay to the sink (./haraka.ts), ready to take mail; or why it is not there. */
async function startHaraka(port: number, sinkPort: number, workdir: string): Promise<{ child: ChildProcess; errors: () => string } | { unavailable: string }> {
  const installed = await installHaraka();
  if ('unavailable' in installed) return installed;
  const args = configureHaraka(path.join(workdir, 'haraka'), port, sinkPort);
  const child = start(installed.bin, args);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const errors = () => output.trim().split('\n').slice(-10).join('\n');
  try {
    await waitForBanner(port, 'Haraka', child, 30_000);
  } catch (err) {
    return { unavailable: `Haraka did not start: ${(err as Error).message}\n${errors()}` };
  }
  return { child, errors };
}

function peakRssMb(pid: number | undefined): string {
  if (pid === undefined) return 'n/a';
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? `${(Number(match[1]) / 1024).toFixed(1)} MB` : 'n/a';
  } catch {
    return 'n/a';
  }
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let profiled: { gatewayCpu: number; aloneCpu: number } | undefined;
  const source = findTool('smtp-source');
  const sink = findTool('smtp-sink');
  if (!source || !sink) {
    console.log('relay benchmark skipped: needs smtp-source and smtp-sink (Debian package postfix)');
    return 0;
  }
  const perConnection = positiveInt('BENCH_MESSAGES', 5000);
  const reused = Math.round(perConnection * 2.5);
  const sinkPort = await freePort();
  const gatewayPort = await freePort();
  const alonePort = await freePort();
  const harakaPort = await freePort();
  const workdir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-bench-'));

  try {
    const asRoot = process.getuid?.() === 0;
    const sinkChild = start(sink, [...(asRoot ? ['-u', 'nobody'] : []), '-c', `127.0.0.1:${sinkPort}`, '256']);
    sinkChild.stdout!.resume();
    let sinkErr = '';
    sinkChild.stderr!.on('data', (d: Buffer) => (sinkErr += d.toString()));
    await waitForBanner(sinkPort, 'smtp-sink', sinkChild).catch((err: Error) => {
      throw new Error(`${err.message}\n${sinkErr.trim()}`);
    });

    const alone = start(process.execPath, [smtpServerAlone, String(alonePort)]);
    let aloneErr = '';
    alone.stderr!.on('data', (d: Buffer) => (aloneErr += d.toString()));
    await waitForBanner(alonePort, 'smtp-server alone', alone).catch((err: Error) => {
      throw new Error(`${err.message}\n${aloneErr.trim()}`);
    });

    const gateway = start(
      process.execPath,
      [
        // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": profile the gateway under this load
        ...(process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
        gatewayMain,
        'serve',
        '--listen',
        `127.0.0.1:${gatewayPort}`,
        '--downstream',
        `127.0.0.1:${sinkPort}`,
        '--set',
        'log.level=warn',
        // BENCH_SET="spoof.enabled=false rate.enabled=false": the same run with policy changes
        ...(process.env.BENCH_SET ?? '')
          .split(/\s+/)
          .filter(Boolean)
          .flatMap((o) => ['--set', o]),
      ],
      { cwd: workdir },
    );
    // at log.level=warn the gateway should write only warnings and errors: keep a tally
    const logged = new Map<string, number>();
    const firstLogged: string[] = [];
    let pending = '';
    gateway.stdout!.setEncoding('utf8');
    gateway.stdout!.on('data', (chunk: string) => {
      pending += chunk;
      let eol: number;
      while ((eol = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, eol);
        pending = pending.slice(eol + 1);
        let key = line.slice(0, 60);
        try {
          const entry = JSON.parse(line) as { level?: number; event?: string };
          if ((entry.level ?? 0) < 40) continue; // logged before log.level applied, e.g. policy_loaded
          key = `${entry.event ?? 'log'}(level ${entry.level})`;
        } catch {
          // not JSON: count the raw line
        }
        logged.set(key, (logged.get(key) ?? 0) + 1);
        if (firstLogged.length < 3) firstLogged.push(line.slice(0, 300));
      }
    });
    let gatewayErr = '';
    gateway.stderr!.on('data', (d: Buffer) => (gatewayErr += d.toString()));
    let gatewayDied: string | undefined;
    gateway.once('exit', (code, signal) => (gatewayDied = `gateway exited (${code ?? signal})\n${gatewayErr.trim()}`));
    await waitForBanner(gatewayPort, 'gateway', gateway).catch((err: Error) => {
      throw new Error(`${err.message}\n${gatewayErr.trim()}`);
    });
    const haraka = await startHaraka(harakaPort, sinkPort, workdir);
    const alive = () => {
      if (gatewayDied) throw new Error(gatewayDied);
      if (sinkChild.exitCode !== null || sinkChild.signalCode !== null) throw new Error(`smtp-sink exited\n${sinkErr.trim()}`);
      if (alone.exitCode !== null || alone.signalCode !== null) throw new Error(`smtp-server alone exited\n${aloneErr.trim()}`);
      if ('child' in haraka && (haraka.child.exitCode !== null || haraka.child.signalCode !== null)) throw new Error(`Haraka exited\n${haraka.errors()}`);
    };

    console.log(
      `relay benchmark: smtp-source -s ${SESSIONS} -l ${MESSAGE_BYTES}, ${perConnection} msgs one per connection, ${reused} with -d; ` +
        `${ROUNDS} rounds, each ratio measured within one round, the median printed (warm-up ${WARMUP} msgs each, once)`,
    );
    if ('unavailable' in haraka) console.log(`  Haraka row: not run: ${haraka.unavailable}`);
    const targets: Target[] = [
      { key: 'direct', label: 'direct (smtp-sink)', port: sinkPort },
      { key: 'alone', label: 'smtp-server alone', port: alonePort, pid: alone.pid },
      ...('child' in haraka ? [{ key: 'haraka', label: `Haraka ${HARAKA_VERSION} plain relay`, port: harakaPort, pid: haraka.child.pid }] : []),
      { key: 'gateway', label: 'gateway, every analyzer on', port: gatewayPort, pid: gateway.pid },
    ];
    for (const t of targets) {
      await smtpSource(source, t.port, { sessions: SESSIONS, messages: WARMUP, bytes: MESSAGE_BYTES, from: FROM, to: TO });
      alive();
    }
    await smtpSource(source, gatewayPort, { sessions: SESSIONS, messages: WARMUP, bytes: MESSAGE_BYTES, from: FROM, to: TO, reuse: true });

    const rounds: Record<string, number>[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const r: Record<string, number> = {};
      for (const t of targets) {
        const cpuBefore = t.pid === undefined ? undefined : cpuMs(t.pid);
        const seconds = await smtpSource(source, t.port, { sessions: SESSIONS, messages: perConnection, bytes: MESSAGE_BYTES, from: FROM, to: TO });
        alive();
        r[t.key] = perConnection / seconds;
        if (t.pid !== undefined && cpuBefore !== undefined) r[`${t.key}Cpu`] = (cpuMs(t.pid)! - cpuBefore) / perConnection;
      }
      for (const [key, port] of [
        ['directReuse', sinkPort],
        ['gatewayReuse', gatewayPort],
      ] as const) {
        r[key] = reused / (await smtpSource(source, port, { sessions: SESSIONS, messages: reused, bytes: MESSAGE_BYTES, from: FROM, to: TO, reuse: true }));
        alive();
      }
      const direct = await latencies(sinkPort, LATENCY_MESSAGES);
      const viaGateway = await latencies(gatewayPort, LATENCY_MESSAGES);
      alive();
      r.addedP50 = percentile(viaGateway, 50) - percentile(direct, 50);
      r.addedP99 = percentile(viaGateway, 99) - percentile(direct, 99);
      rounds.push(r);
      console.log(
        `  round ${round}: ` +
          targets.map((t) => `${t.key} ${r[t.key].toFixed(0)}`).join(', ') +
          ` msg/s; with -d: direct ${r.directReuse.toFixed(0)}, gateway ${r.gatewayReuse.toFixed(0)}; ` +
          `gateway CPU ${r.gatewayCpu.toFixed(3)} ms/msg; added latency p50 ${r.addedP50.toFixed(2)} ms, p99 ${r.addedP99.toFixed(2)} ms`,
      );
    }
    const med = (f: (r: Record<string, number>) => number) => median(rounds.map(f));
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    console.log(`median of ${ROUNDS} rounds, one message per connection:`);
    for (const t of targets) {
      const cpu = t.pid === undefined ? '' : `, CPU ${med((r) => r[`${t.key}Cpu`]).toFixed(3)} ms per message (utime+stime from /proc)`;
      console.log(
        `  ${t.label.padEnd(32)} ${med((r) => r[t.key])
          .toFixed(0)
          .padStart(6)} msg/s${cpu}`,
      );
    }
    const results: [string, string, boolean | undefined][] = [];
    if ('child' in haraka) {
      const x = med((r) => r.gateway / r.haraka);
      results.push([`gateway/Haraka: ${x.toFixed(2)}x`, `>= ${TARGET.haraka}`, x >= TARGET.haraka]);
      const c = med((r) => r.harakaCpu / r.gatewayCpu);
      results.push([`Haraka CPU per message / gateway CPU per message: ${c.toFixed(2)}x`, '', undefined]);
    } else {
      results.push([`gateway/Haraka: not measured (${haraka.unavailable})`, `>= ${TARGET.haraka}`, undefined]);
    }
    const alone1 = med((r) => r.gateway / r.alone);
    results.push([`gateway/smtp-server alone: ${pct(alone1)}`, `>= ${pct(TARGET.alone)}`, alone1 >= TARGET.alone]);
    results.push([
      `gateway/direct: ${pct(med((r) => r.gateway / r.direct))} one per connection, ${pct(med((r) => r.gatewayReuse / r.directReuse))} with -d`,
      '',
      undefined,
    ]);
    results.push([`smtp-server alone/direct: ${pct(med((r) => r.alone / r.direct))} (the ceiling of a gateway on smtp-server)`, '', undefined]);
    const p50 = med((r) => r.addedP50);
    const p99 = med((r) => r.addedP99);
    results.push([
      `added latency (${LATENCY_MESSAGES} sequential messages, one per connection): p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      `p99 <= ${TARGET.p99Ms} ms`,
      p99 <= TARGET.p99Ms,
    ]);
    results.push([`gateway CPU per relayed message: ${med((r) => r.gatewayCpu).toFixed(3)} ms`, '', undefined]);
    for (const [what, target, met] of results) {
      console.log(`  ${what}${target ? `  (target ${target}: ${met === undefined ? 'not measured' : met ? 'met' : 'NOT met'})` : ''}`);
    }
    console.log(`gateway peak RSS (VmHWM): ${peakRssMb(gateway.pid)}`);
    const total = [...logged.values()].reduce((a, b) => a + b, 0);
    if (total) {
      console.log(`gateway logged ${total} warning/error lines: ${[...logged].map(([k, n]) => `${k} x${n}`).join(', ')}`);
      for (const line of firstLogged) console.log(`  ${line}`);
    } else {
      console.log('gateway logged no warnings or errors');
    }
    profiled = { gatewayCpu: med((r) => r.gatewayCpu), aloneCpu: med((r) => r.aloneCpu) };
    return 0;
  } finally {
    await stopAll();
    rmSync(workdir, { recursive: true, force: true });
    if (profiled) printProfileSplit(profiled.gatewayCpu, profiled.aloneCpu);
  }
}

/**
 * With BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR", the gateway's profile (written as it exits)
 * split into the SMTP legs and the inspection (./profile-split.ts), each as CPU per message, and what
 * gateway/smtp-server alone could reach if the inspection cost nothing.
 */
function printProfileSplit(gatewayCpu: number, aloneCpu: number): void {
  const dir = /--cpu-prof-dir=(\S+)/.exec(process.env.BENCH_NODE_ARGS ?? '')?.[1];
  const file = dir && newestProfile(dir);
  if (!file) return;
  const split = splitProfile(file);
  console.log(`gateway CPU profile (${file}), shares of its busy time applied to ${gatewayCpu.toFixed(3)} ms per message:`);
  for (const line of formatSplit(split, gatewayCpu)) console.log(line);
  const legs = (split.byShare['SMTP legs'] / split.busyMs) * gatewayCpu;
  console.log(
    `  the SMTP legs alone are ${(legs / aloneCpu).toFixed(2)}x smtp-server alone's CPU per message: with inspection free, ` +
      `gateway/smtp-server alone would be at most ~${((aloneCpu / legs) * 100).toFixed(0)}%`,
  );
}

// a closed stdout (`| head`) must not kill the run before the children are stopped
process.stdout.on('error', () => undefined);
// last resort: whatever way this process ends, no child outlives it
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`relay benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
