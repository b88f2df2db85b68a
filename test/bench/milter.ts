// Milter benchmark (`npm run bench:milter`): messages/s that Postfix accepts from smtp-source, with
// Mailmoat as its milter and without, in the same run (two private Postfix instances on loopback,
// both relaying to one smtp-sink), and the ratio: the cost of the milter. Mailmoat runs as
// `mailmoat serve` with only the milter front end, as an admin would run it.
//
//   BENCH_MESSAGES=N   messages per measured run (default 2000), after a 200-message warm-up
//
// Needs smtp-source, smtp-sink and postfix (Debian package postfix) and root (private Postfix
// instances); without them it says so and exits 0. Exits non-zero only when something failed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/global.js';
import { postfixUnavailable, startPostfix, type PrivatePostfix } from '../helpers/private-postfix.js';
import { postfixTool } from '../helpers/postfix.js';
import { smtpSource } from './smtp-source.js';

const SESSIONS = 20;
const MESSAGE_BYTES = 10240;
const WARMUP = 200;
const here = path.dirname(fileURLToPath(import.meta.url));
const main = path.resolve(here, '../../src/cli/main.js');

const RUN = { sessions: SESSIONS, bytes: MESSAGE_BYTES, from: 'sender@bench.test', to: 'rcpt@bench.test' };

async function throughput(tool: string, port: number, messages: number): Promise<number> {
  await smtpSource(tool, port, { ...RUN, messages: WARMUP });
  return messages / (await smtpSource(tool, port, { ...RUN, messages }));
}

function listening(port: number, timeout = 10000): Promise<void> {
  const deadline = Date.now() + timeout;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function peakRssMb(pid: number | undefined): string {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? `${(Number(match[1]) / 1024).toFixed(1)} MB` : 'n/a';
  } catch {
    return 'n/a';
  }
}

async function run(): Promise<number> {
  const source = postfixTool('smtp-source');
  const sinkTool = postfixTool('smtp-sink');
  const missing = !source || !sinkTool ? 'needs smtp-source and smtp-sink (Debian package postfix)' : postfixUnavailable();
  if (missing) {
    console.log(`milter benchmark skipped: ${missing}`);
    return 0;
  }
  const messages = Number(process.env.BENCH_MESSAGES ?? 2000);
  if (!Number.isInteger(messages) || messages <= 0) throw new Error(`BENCH_MESSAGES must be a positive integer`);
  const sinkPort = await freePort();
  const milterPort = await freePort();
  const workdir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-bench-milter-'));
  const children: ChildProcess[] = [];
  const instances: PrivatePostfix[] = [];
  try {
    const sink = spawn(sinkTool!, ['-u', 'nobody', '-c', `127.0.0.1:${sinkPort}`, '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(sink);
    await listening(sinkPort);
    const mailmoat = spawn(
      process.execPath,
      [
        main,
        'serve',
        '--set',
        'smtp.enabled=false',
        '--set',
        'milter.enabled=true',
        '--set',
        `milter.listen=inet:127.0.0.1:${milterPort}`,
        '--set',
        'log.level=warn',
      ],
      { cwd: workdir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(mailmoat);
    let errors = '';
    mailmoat.stdout.on('data', (d: Buffer) => (errors += d.toString()));
    mailmoat.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    await listening(milterPort);

    const plain = await startPostfix({ nextHopPort: sinkPort });
    instances.push(plain);
    const filtered = await startPostfix({ nextHopPort: sinkPort, milter: `inet:127.0.0.1:${milterPort}` });
    instances.push(filtered);

    console.log(`milter benchmark: smtp-source -s ${SESSIONS} -l ${MESSAGE_BYTES}, ${messages} msgs per run (warm-up ${WARMUP}), Postfix → smtp-sink`);
    const alone = await throughput(source!, plain.port, messages);
    const withMilter = await throughput(source!, filtered.port, messages);
    const aloneAgain = await throughput(source!, plain.port, messages);
    const baseline = (alone + aloneAgain) / 2;
    const milterLines = filtered.maillog().split('\n');
    const defaults = milterLines.filter((l) => /milter.*(default_action|not responding|unreachable|timeout)/i.test(l)).length;
    console.log(`  Postfix alone          ${alone.toFixed(0)} msg/s (again after: ${aloneAgain.toFixed(0)} msg/s)`);
    console.log(`  Postfix + milter       ${withMilter.toFixed(0)} msg/s`);
    console.log(`  ratio                  ${((withMilter / baseline) * 100).toFixed(0)}% of Postfix alone (mean of both runs)`);
    console.log(`  Mailmoat peak RSS      ${peakRssMb(mailmoat.pid)}`);
    console.log(`  milter fallbacks in Postfix's log: ${defaults}`);
    // pino levels: 40 warn, 50 error (the policy's own load line comes at info before log.level applies)
    const warnings = errors
      .trim()
      .split('\n')
      .filter((l) => l && !/"level":(10|20|30),/.test(l));
    if (warnings.length) console.log(`  Mailmoat warnings:\n${warnings.slice(0, 5).join('\n')}`);
    return defaults ? 1 : 0;
  } finally {
    for (const instance of instances) instance.stop();
    for (const child of children) child.kill('SIGTERM');
    rmSync(workdir, { recursive: true, force: true });
  }
}

run().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
