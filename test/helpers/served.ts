// `mailmoat serve` as a real process, as an admin runs it: its JSON log lines read as they come.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './gateway.js';
import { freePort } from './global.js';

export const mainScript = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export function tempPolicy(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mailmoat-cli-')), 'policy.yaml');
  writeFileSync(file, text);
  return file;
}

/** Every gateway process started here and still running: none outlives the test run, even a test cut off by its timeout. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface Served {
  child: ChildProcess;
  port: number;
  logs: Record<string, unknown>[];
  /** what the process wrote to stderr so far */
  stderr(): string;
  waitFor(predicate: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/**
 * Starts the gateway on `port` (a free one by default) relaying to `downstreamPort`, and resolves once
 * it listens. `extra` are more command-line arguments (`--set` overrides); the spool defaults to
 * var/test-spool unless they name another.
 */
export async function serve(policyFile: string, downstreamPort: number, extra: string[] = [], port?: number): Promise<Served> {
  port ??= await freePort();
  const spool = extra.some((a) => a.startsWith('spool.dir=')) ? [] : ['--set', `spool.dir=${path.join(repoRoot, 'var', 'test-spool')}`];
  const child = spawn(
    process.execPath,
    [mainScript, 'serve', '--policy', policyFile, '--listen', `127.0.0.1:${port}`, '--downstream', `127.0.0.1:${downstreamPort}`, ...spool, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiters: (() => void)[] = [];
  let buffer = '';
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let eol;
    while ((eol = buffer.indexOf('\n')) !== -1) {
      logs.push(JSON.parse(buffer.slice(0, eol)) as Record<string, unknown>);
      buffer = buffer.slice(eol + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = async (predicate: (l: Record<string, unknown>) => boolean) => {
    for (;;) {
      const hit = logs.find(predicate);
      if (hit) return hit;
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited.then(() => assert.fail('gateway exited'))]);
    }
  };
  await waitFor((l) => l.event === 'listening' && l.front === 'smtp');
  return { child, port, logs, stderr: () => stderr, waitFor, exited };
}
