// Postfix's smtp-source as the load generator of the benchmarks: one run, timed.
import { spawn } from 'node:child_process';

export interface SourceRun {
  sessions: number;
  messages: number;
  bytes: number;
  from: string;
  to: string;
  /** -d: keep the connection for the next message */
  reuse?: boolean;
}

/** Runs smtp-source against 127.0.0.1:port; resolves with the wall time in seconds. */
export function smtpSource(tool: string, port: number, run: SourceRun): Promise<number> {
  const args = [
    ...(run.reuse ? ['-d'] : []),
    '-s',
    String(run.sessions),
    '-m',
    String(run.messages),
    '-l',
    String(run.bytes),
    '-f',
    run.from,
    '-t',
    run.to,
    `127.0.0.1:${port}`,
  ];
  return new Promise((resolve, reject) => {
    const begin = process.hrtime.bigint();
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
      if (code === 0) resolve(seconds);
      else reject(new Error(`smtp-source ${args.join(' ')} failed (${code ?? signal}):\n${output.trim().split('\n').slice(-10).join('\n')}`));
    });
  });
}
