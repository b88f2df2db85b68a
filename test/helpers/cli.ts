// `mailmoat ...` as a child process, as an admin runs it: exit status and both outputs. Asynchronous,
// because the downstream it may deliver to runs in the test's own process.
import { spawn } from 'node:child_process';
import { mainScript } from './served.js';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function mailmoat(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [mainScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
