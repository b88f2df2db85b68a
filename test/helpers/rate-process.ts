// A real `mailmoat serve` process for the sender-rate tests (separate processes sharing one Redis).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './global.js';
import { repoRoot } from './gateway.js';

export interface GatewayProcess {
  port: number;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startGatewayProcess(downstreamPort: number, sets: string[]): Promise<GatewayProcess> {
  const port = await freePort();
  const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const args = [main, 'serve', '--listen', `127.0.0.1:${port}`, '--downstream', `127.0.0.1:${downstreamPort}`, '--set', 'downstream.starttls=off'];
  args.push('--set', `spool.dir=${path.join(repoRoot, 'var', 'test-spool')}`, ...sets.flatMap((s) => ['--set', s]));
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let buffer = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`gateway exited ${code}: ${stderr}`)));
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.event === 'listening') resolve();
        } catch {
          // not JSON
        }
      }
    });
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
  try {
    await ready;
  } finally {
    clearTimeout(timer);
  }
  return {
    port,
    logs,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
