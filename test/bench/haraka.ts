// Haraka, the Node.js MTA, as the peer of the relay benchmark: a plain relay (the `relay` plugin with an
// ACL for 127.0.0.1 and `queue/smtp_forward` to the benchmark's sink), no inspection at all. It is
// installed from the npm registry into a cache folder outside the project on first use
// (~/.cache/mailmoat-bench/haraka, or MAILMOAT_BENCH_CACHE) and configured in a temporary directory at
// run time; nothing of Haraka is part of the project.
import { execFile } from 'node:child_process';
import { accessSync, constants, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export const HARAKA_VERSION = '3.3.4';

const cacheDir = path.join(process.env.MAILMOAT_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'mailmoat-bench'), 'haraka');
const harakaBin = path.join(cacheDir, 'node_modules', '.bin', 'haraka');
const defaults = path.join(cacheDir, 'node_modules', 'Haraka', 'config');

function installed(): boolean {
  try {
    accessSync(harakaBin, constants.X_OK);
    accessSync(defaults, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The haraka executable, installed into the cache folder if needed; a string saying why not otherwise. */
export async function installHaraka(): Promise<{ bin: string } | { unavailable: string }> {
  if (installed()) return { bin: harakaBin };
  mkdirSync(cacheDir, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  try {
    await promisify(execFile)(npm, ['install', '--prefix', cacheDir, '--no-audit', '--no-fund', `Haraka@${HARAKA_VERSION}`], { timeout: 300_000 });
  } catch (err) {
    const text = (err as { stderr?: string; message: string }).stderr?.trim().split('\n').slice(-3).join(' ') || (err as Error).message;
    return { unavailable: `npm install Haraka@${HARAKA_VERSION} into ${cacheDir} failed (${text})` };
  }
  return installed() ? { bin: harakaBin } : { unavailable: `npm install Haraka@${HARAKA_VERSION} left no ${harakaBin}` };
}

/**
 * Writes a Haraka configuration into DIR/config (Haraka's own defaults, then the relay): listen on
 * 127.0.0.1:port, relay for 127.0.0.1, forward every message to 127.0.0.1:sinkPort, log warnings only,
 * one process (no cluster: the gateway is one process too). Returns Haraka's arguments.
 */
export function configureHaraka(dir: string, port: number, sinkPort: number): string[] {
  const config = path.join(dir, 'config');
  mkdirSync(config, { recursive: true });
  cpSync(defaults, config, { recursive: true });
  const files: Record<string, string> = {
    'smtp.ini': `listen=127.0.0.1:${port}\nnodes=0\n`,
    plugins: 'relay\nqueue/smtp_forward\n',
    'relay.ini': '[relay]\nacl=true\nforce_routing=false\ndest_domains=false\n',
    relay_acl_allow: '127.0.0.1/32\n',
    'smtp_forward.ini': `[main]\nhost=127.0.0.1\nport=${sinkPort}\nenable_outbound=true\n`,
    'log.ini': '[main]\nlevel=warn\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(config, name), text);
  return ['-c', dir];
}
