// Relay benchmark (`npm run bench`): Postfix's smtp-source against smtp-sink, directly and through the
// gateway, in two modes (one message per connection, and connection reuse with -d), plus the latency
// the gateway adds per message, measured with a small sequential SMTP client. For scale it also
// measures smtp-server alone (./smtp-server-alone.ts: accept and discard, no relay, no inspection),
// the ceiling of any gateway built on smtp-server on the same machine.
//
//   BENCH_MESSAGES=N   messages per measured one-per-connection run (default 5000); the -d runs send
//                      2.5 x N. Each measured run follows a warm-up of WARMUP messages: the gateway
//                      reaches its steady rate only once V8 has optimised its hot paths (a few
//                      thousand messages), and a long-running gateway is what the figure is about.
//
// Needs smtp-source and smtp-sink (Debian package postfix); without them it says so and exits 0.
// Exits non-zero only when something actually failed (a child died, smtp-source reported a protocol
// failure, a reply was not the one expected); missing the throughput target is reported, not fatal.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SmtpClient } from '../../src/relay/smtp-client.js';
import { connect, sendData, text } from '../helpers/client.js';
import { freePort } from '../helpers/global.js';
import { smtpSource } from './smtp-source.js';

const SESSIONS = 20;
const MESSAGE_BYTES = 10240;
const WARMUP = 3000;
const LATENCY_MESSAGES = 300;
const TARGET_RATIO = 0.4;
const FROM = 'sender@bench.test';
const TO = 'rcpt@bench.test';

const here = path.dirname(fileURLToPath(import.meta.url));
const gatewayMain = path.resolve(here, '../../src/cli/main.js');
const smtpServerAlone = path.resolve(here, 'smtp-server-alone.js');

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`BENCH_MESSAGES must be a positive integer, got ${JSON.stringify(value)}`);
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

/** Warm-up, then the measured run; returns messages per second. */
async function throughput(tool: string, port: number, messages: number, reuse: boolean): Promise<number> {
  await smtpSource(tool, port, { sessions: SESSIONS, messages: WARMUP, bytes: MESSAGE_BYTES, from: FROM, to: TO, reuse });
  const seconds = await smtpSource(tool, port, { sessions: SESSIONS, messages, bytes: MESSAGE_BYTES, from: FROM, to: TO, reuse });
  return messages / seconds;
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
  const source = findTool('smtp-source');
  const sink = findTool('smtp-sink');
  if (!source || !sink) {
    console.log('relay benchmark skipped: needs smtp-source and smtp-sink (Debian package postfix)');
    return 0;
  }
  const perConnection = positiveInt(process.env.BENCH_MESSAGES, 5000);
  const reused = Math.round(perConnection * 2.5);
  const sinkPort = await freePort();
  const gatewayPort = await freePort();
  const alonePort = await freePort();
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
    const alive = () => {
      if (gatewayDied) throw new Error(gatewayDied);
      if (sinkChild.exitCode !== null || sinkChild.signalCode !== null) throw new Error(`smtp-sink exited\n${sinkErr.trim()}`);
      if (alone.exitCode !== null || alone.signalCode !== null) throw new Error(`smtp-server alone exited\n${aloneErr.trim()}`);
    };

    console.log(
      `relay benchmark: smtp-source -s ${SESSIONS} -l ${MESSAGE_BYTES}, ${perConnection} msgs one per connection, ${reused} with -d (warm-up ${WARMUP} each)`,
    );
    const rows: [string, number, boolean, string][] = [
      ['direct, one message per connection ', sinkPort, false, 'directOne'],
      ['smtp-server alone, one per connection', alonePort, false, 'aloneOne'],
      ['gateway, one message per connection', gatewayPort, false, 'gatewayOne'],
      ['direct, connection reuse (-d)      ', sinkPort, true, 'directReuse'],
      ['gateway, connection reuse (-d)     ', gatewayPort, true, 'gatewayReuse'],
    ];
    const rate: Record<string, number> = {};
    for (const [label, port, reuse, key] of rows) {
      rate[key] = await throughput(source, port, reuse ? reused : perConnection, reuse);
      alive();
      console.log(`  ${label.trim().padEnd(40)} ${rate[key].toFixed(0).padStart(6)} msg/s`);
    }
    const ratioOne = rate.gatewayOne / rate.directOne;
    const ratioReuse = rate.gatewayReuse / rate.directReuse;
    console.log(`  gateway/direct: one per connection ${(ratioOne * 100).toFixed(1)}%, with -d ${(ratioReuse * 100).toFixed(1)}%`);
    console.log(
      `  smtp-server alone/direct: ${((rate.aloneOne / rate.directOne) * 100).toFixed(1)}% (the ceiling); gateway/smtp-server alone: ${((rate.gatewayOne / rate.aloneOne) * 100).toFixed(1)}%`,
    );
    console.log(`  target "gateway >= ${TARGET_RATIO * 100}% of direct, one message per connection": ${ratioOne >= TARGET_RATIO ? 'met' : 'NOT met'}`);

    console.log(`latency, ${LATENCY_MESSAGES} sequential messages one per connection (connect to 250 after "."):`);
    const direct = await latencies(sinkPort, LATENCY_MESSAGES);
    alive();
    const viaGateway = await latencies(gatewayPort, LATENCY_MESSAGES);
    alive();
    const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
    console.log(`  direct   p50 ${fmt(percentile(direct, 50))}  p99 ${fmt(percentile(direct, 99))}`);
    console.log(`  gateway  p50 ${fmt(percentile(viaGateway, 50))}  p99 ${fmt(percentile(viaGateway, 99))}`);
    console.log(
      `  added by the gateway: p50 ${fmt(percentile(viaGateway, 50) - percentile(direct, 50))}, p99 ${fmt(percentile(viaGateway, 99) - percentile(direct, 99))}`,
    );
    console.log(`gateway peak RSS (VmHWM): ${peakRssMb(gateway.pid)}`);
    const total = [...logged.values()].reduce((a, b) => a + b, 0);
    if (total) {
      console.log(`gateway logged ${total} warning/error lines: ${[...logged].map(([k, n]) => `${k} x${n}`).join(', ')}`);
      for (const line of firstLogged) console.log(`  ${line}`);
    } else {
      console.log('gateway logged no warnings or errors');
    }
    return 0;
  } finally {
    await stopAll();
    rmSync(workdir, { recursive: true, force: true });
  }
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
