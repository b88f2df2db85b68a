// `mailmoat serve`: runs the gateway with a policy file, reloads it on change and SIGHUP, drains on SIGTERM.
import type { Command } from 'commander';
import { Gateway } from '../gateway/server.js';
import { MilterServer } from '../milter/server.js';
import { closeScanPool } from '../inspect/office/pool.js';
import { startMetricsServer } from '../observe/metrics.js';
import { createLogger, type Logger } from '../observe/log.js';
import { formatProblem, PolicyError } from '../policy/load.js';
import { formatReply } from '../relay/smtp-client.js';
import { PolicyHolder } from '../policy/watch.js';
import type { Policy } from '../policy/schema.js';
import { probeDownstream } from '../relay/probe.js';
import { startDigestSchedule } from '../quarantine/digest-schedule.js';
import { closeState, openState, type StateBackend } from '../state/index.js';
import type { RunningConsole } from '../console/server.js';
import { cleanSpoolDir, disposeAllSpools } from '../message/spool.js';
import { defaultPolicyFile } from './paths.js';
import { collect } from './policy.js';

interface ServeOptions {
  policy: string;
  listen?: string;
  downstream?: string;
  set: string[];
}

/** `HOST:PORT`, `[::1]:PORT` → the two `--set` overrides it stands for. */
export function hostPortOverrides(key: string, value: string): string[] {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  if (!match) throw new PolicyError(`--${key}`, [{ where: `--${key} ${value}`, key, message: 'expected HOST:PORT, e.g. 127.0.0.1:10025 or [::1]:10025' }]);
  return [`${key}.host=${JSON.stringify(match[1] ?? match[2])}`, `${key}.port=${match[3]}`];
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the SMTP gateway in front of the downstream MTA')
    .option('-p, --policy <file>', 'policy file (reloaded when it changes and on SIGHUP)', defaultPolicyFile)
    .option('-l, --listen <host:port>', 'address to accept SMTP on (overrides listen.*)')
    .option('-d, --downstream <host:port>', 'MTA to relay to (overrides downstream.*)')
    .option('-o, --set <key.path=value>', 'override any policy option, e.g. limits.maxRecipients=50 (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Examples:
  mailmoat serve                                   # policies/default.yaml: 127.0.0.1:10025 -> 127.0.0.1:10026
  mailmoat serve --policy /etc/mailmoat/policy.yaml
  mailmoat serve --listen 0.0.0.0:25 --downstream mta.internal:25 --set limits.maxMessageSize=50MB
  mailmoat serve --set milter.enabled=true --set smtp.enabled=false   # only the milter (Postfix smtpd_milters)

Signals: SIGHUP reloads the policy; SIGTERM stops accepting, finishes messages in flight, exits 0.`,
    )
    .action(async (opts: ServeOptions) => {
      const log = createLogger();
      let holder: PolicyHolder;
      try {
        const overrides = [
          ...(opts.listen ? hostPortOverrides('listen', opts.listen) : []),
          ...(opts.downstream ? hostPortOverrides('downstream', opts.downstream) : []),
          ...opts.set,
        ];
        holder = new PolicyHolder(opts.policy, overrides, log);
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        for (const problem of err.problems) process.stderr.write(formatProblem(problem) + '\n');
        process.exitCode = 1;
        return;
      }
      log.level = holder.policy.log.level;
      await runGateway(holder, log);
    });
}

/** How long the start-up check waits for the downstream's connect and greeting, each. */
const PROBE_TIMEOUT_MS = 3000;

/**
 * The downstream at start-up: reachable is a log line; unreachable is a warning in the log
 * (`downstream_unreachable`) and in plain words on stderr, since the first sign would otherwise be
 * every client getting 451. Not fatal: the MTA may simply start after the gateway.
 */
async function checkDownstream(policy: Policy, log: Logger): Promise<void> {
  const { host, port } = policy.downstream;
  const at = `${host}:${port}`;
  const result = await probeDownstream(host, port, Math.min(policy.timeouts.downstreamConnect, PROBE_TIMEOUT_MS));
  if (result.reachable) {
    log.info({ event: 'downstream_reachable', downstream: at, greeting: formatReply(result.greeting) }, 'downstream MTA answers');
    return;
  }
  const consequence = 'every message will be deferred with 451 4.4.1 until it answers (clients keep their mail and retry)';
  log.warn({ event: 'downstream_unreachable', downstream: at, reason: result.reason, consequence }, `downstream MTA unreachable: ${consequence}`);
  process.stderr.write(
    `mailmoat: the downstream MTA at ${at} is unreachable (${result.reason}).\n` +
      `mailmoat: the gateway is running, but ${consequence}.\n` +
      `mailmoat: start the MTA there, or point the gateway at yours with --downstream HOST:PORT; \`npm run demo\` shows Mailmoat with a stand-in MTA.\n`,
  );
}

/** One gateway process (the only one, or a worker): serve, reload, drain on SIGTERM. */
async function runGateway(holder: PolicyHolder, log: Logger): Promise<void> {
  const state = await openState(holder.policy.state, log);
  const metricsAt = holder.policy.metrics.listen;
  const metricsServer = metricsAt ? await startMetricsServer(metricsAt.host, metricsAt.port, log) : undefined;
  const { listen, downstream, tls, smtp, milter: milterPolicy } = holder.policy;
  if (!smtp.enabled && !milterPolicy.enabled) {
    log.error({ event: 'nothing_to_serve' }, 'smtp.enabled and milter.enabled are both false: nothing to serve');
    await closeState(state);
    process.exitCode = 1;
    return;
  }
  // spool files of a gateway killed outright (kill -9, power loss): nobody will finish those messages
  const orphans = await cleanSpoolDir(holder.policy.spool.dir);
  if (orphans.length)
    log.warn({ event: 'spool_cleaned', dir: holder.policy.spool.dir, files: orphans.length }, 'removed spool files left by a process that is gone');
  // the SMTP proxy and the milter: either or both, onto the same pipeline
  const gateway = smtp.enabled ? new Gateway(holder, log, { state, log }) : undefined;
  if (gateway) {
    const address = await gateway.listen(listen.host, listen.port);
    log.info(
      {
        event: 'listening',
        front: 'smtp',
        listen: `${address.address}:${address.port}`,
        downstream: `${downstream.host}:${downstream.port}`,
        version: holder.version,
      },
      'mailmoat gateway ready',
    );
    checkDownstream(holder.policy, log).catch(() => undefined); // never throws; not awaited: SIGTERM and SIGHUP must work at once
  }
  const milter = milterPolicy.enabled ? new MilterServer(holder, log, { services: { state, log } }) : undefined;
  if (milter) {
    const address = await milter.listen(milterPolicy.listen);
    log.info({ event: 'listening', front: 'milter', milter: address, version: holder.version }, 'mailmoat milter ready');
  }
  // the web console in this process: the quarantine directory and the very state the gateway counts in
  // (loaded only when enabled: a gateway without a console does not pay for the web framework)
  const { listen: consoleAt, tls: consoleTls } = holder.policy.console;
  const webConsole = consoleAt ? await startWebConsole(holder, state, log) : undefined;
  holder.onChange(({ policy }) => {
    log.level = policy.log.level;
    gateway?.applyPolicy(policy);
    if (policy.listen.host !== listen.host || policy.listen.port !== listen.port || JSON.stringify(policy.tls) !== JSON.stringify(tls)) {
      log.warn({ event: 'policy_needs_restart', keys: ['listen', 'tls'] }, 'listen and tls changes take effect after a restart');
    }
    if (JSON.stringify(policy.console.listen) !== JSON.stringify(consoleAt) || JSON.stringify(policy.console.tls) !== JSON.stringify(consoleTls)) {
      log.warn(
        { event: 'policy_needs_restart', keys: ['console.listen', 'console.tls'] },
        'console.listen and console.tls changes take effect after a restart',
      );
    }
    if (policy.smtp.enabled !== smtp.enabled || policy.milter.enabled !== milterPolicy.enabled || policy.milter.listen !== milterPolicy.listen) {
      log.warn({ event: 'policy_needs_restart', keys: ['smtp.enabled', 'milter.enabled', 'milter.listen'] }, 'front-end changes take effect after a restart');
    }
  });
  holder.watch();
  // the recipients' digests on quarantine.digest.schedule (idle while it is null)
  const digests = startDigestSchedule(() => holder.policy, log);
  process.on('SIGHUP', () => holder.reload('SIGHUP'));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(
      { event: 'draining', signal, inFlight: (gateway?.activeTransactions ?? 0) + (milter?.activeMessages ?? 0) },
      'stopping: finishing messages in flight',
    );
    holder.close();
    await Promise.all([gateway?.drain(), milter?.drain(), digests.stop(), webConsole?.close()]);
    // whatever a front end could not unwind in time: no spool file outlives the process
    const left = await disposeAllSpools();
    if (left) log.warn({ event: 'spool_disposed', spools: left }, 'spools of messages cut short by the drain removed');
    await closeScanPool();
    metricsServer?.close();
    await closeState(state);
    log.info({ event: 'stopped' }, 'stopped');
    log.flush();
    process.exit(0);
  };
  const stopOrDie = (signal: string): void => {
    stop(signal).catch((err: unknown) => {
      log.fatal({ event: 'stop_failed', err: String(err) }, 'stopping failed');
      log.flush();
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stopOrDie('SIGTERM'));
  process.on('SIGINT', () => stopOrDie('SIGINT'));
}

async function startWebConsole(holder: PolicyHolder, state: StateBackend, log: Logger): Promise<RunningConsole> {
  const { startConsole } = await import('../console/server.js');
  const { sharedState } = await import('../console/state.js');
  return startConsole({ policy: () => holder.policy, state: sharedState(state, holder.policy), log });
}
