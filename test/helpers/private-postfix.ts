// A private Postfix on loopback, with Mailmoat as its milter (smtpd_milters) or its before-queue proxy
// (smtpd_proxy_filter), relaying to a next hop on loopback. Own main.cf, queue and data directories
// under /tmp; /etc/postfix is only read (master.cf copied). Needs the Debian package postfix and root.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './global.js';
import { postfixTool } from './postfix.js';

export interface PrivatePostfix {
  /** the smtpd port clients send to */
  port: number;
  dir: string;
  maillog(): string;
  /** waits until the maillog matches */
  waitLog(pattern: RegExp, timeout?: number): Promise<string>;
  stop(): void;
}

/** Why a private Postfix cannot run here, or undefined when it can. */
export function postfixUnavailable(): string | undefined {
  if (!postfixTool('postfix') || !postfixTool('postconf')) return 'needs Postfix (Debian package postfix)';
  if (process.getuid?.() !== 0) return 'needs root to run a private Postfix instance';
  return undefined;
}

export interface PostfixOptions {
  /** smtpd_milters value, e.g. inet:127.0.0.1:10028 */
  milter?: string;
  /** where Postfix relays everything (relayhost) */
  nextHopPort: number;
  /** extra main.cf lines */
  main?: string[];
  /** smtpd processes (master.cf maxproc) */
  maxproc?: number;
  /** `-o name=value` settings of the public smtpd, e.g. smtpd_proxy_filter=127.0.0.1:10025 */
  smtpd?: string[];
}

export async function startPostfix(opts: PostfixOptions): Promise<PrivatePostfix> {
  const postfix = postfixTool('postfix')!;
  const postconf = postfixTool('postconf')!;
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-postfix-'));
  mkdirSync(path.join(dir, 'queue'));
  mkdirSync(path.join(dir, 'data'));
  copyFileSync('/etc/postfix/master.cf', path.join(dir, 'master.cf'));
  // an extra main.cf line replaces the base line of the same name (Postfix would warn about both)
  const overridden = new Set((opts.main ?? []).map((line) => line.split('=')[0].trim()));
  writeFileSync(
    path.join(dir, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'myhostname = mx.test.local',
      'mydestination =',
      'mynetworks = 127.0.0.0/8',
      'smtpd_recipient_restrictions = permit_mynetworks, reject',
      `relayhost = [127.0.0.1]:${opts.nextHopPort}`,
      'smtp_tls_security_level = none',
      'smtpd_tls_security_level = none',
      'smtputf8_enable = no',
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = /var, /dev/stdout, ${tmpdir()}`,
      ...(opts.milter ? [`smtpd_milters = ${opts.milter}`, 'milter_default_action = tempfail', 'milter_protocol = 6', 'milter_content_timeout = 60s'] : []),
    ]
      .filter((line) => !overridden.has(line.split('=')[0].trim()))
      .concat(opts.main ?? [], '')
      .join('\n'),
  );
  execFileSync(postconf, ['-c', dir, '-F', '*/*/chroot = n']);
  const overrides = (opts.smtpd ?? []).map((o) => ` -o ${o}`).join('');
  execFileSync(postconf, ['-c', dir, '-M', `127.0.0.1:${port}/inet=127.0.0.1:${port} inet n - n - ${opts.maxproc ?? 100} smtpd${overrides}`]);
  execFileSync('chown', ['postfix', path.join(dir, 'data')]);
  const run = (...args: string[]) => execFileSync('script', ['-qc', [postfix, '-c', dir, ...args].join(' '), '/dev/null'], { encoding: 'utf8' });
  run('set-permissions');
  run('start');
  for (let i = 0; i < 100; i++) {
    if (await greets(port)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const maillog = () => (existsSync(path.join(dir, 'maillog')) ? readFileSync(path.join(dir, 'maillog'), 'utf8') : '');
  return {
    port,
    dir,
    maillog,
    async waitLog(pattern, timeout = 15000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const log = maillog();
        if (pattern.test(log)) return log;
        if (Date.now() > deadline) throw new Error(`maillog does not match ${pattern}:\n${log.split('\n').slice(-15).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop() {
      try {
        run('stop');
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (d) => done(d.toString().startsWith('220')));
  });
}
