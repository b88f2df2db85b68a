// `mailmoat sender top|show|suspend|unsuspend`: the per-sender rate counters and holds. Reads and
// changes the state the gateways use: Redis directly; with the embedded in-memory backend, the
// running gateway's admin socket (rate.admin.socket), or it says that it needs one of the two.
import type { Command } from 'commander';
import { formatProblem, loadPolicy, PolicyError } from '../policy/load.js';
import { duration, RATE_METRICS, type Policy, type RateMetric } from '../policy/schema.js';
import { AdminError, adminRequest, BY, show, suspend, top, unsuspend, type SubjectReport } from '../rate/admin.js';
import { formatDuration } from '../rate/plan.js';
import { RedisRateStore } from '../rate/redis-store.js';
import { connectForCommand } from '../state/index.js';
import { defaultPolicyFile } from './paths.js';
import { collect } from './policy.js';

interface Common {
  policy: string;
  set: string[];
  json?: boolean;
}

const EXIT = { ok: 0, notFound: 1, usage: 2, unavailable: 3 } as const;

class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** Runs `op` against the state: a Redis store, or the admin socket of a memory-backend gateway. */
async function withState<T>(
  opts: Common,
  viaRedis: (store: RedisRateStore, policy: Policy) => Promise<T>,
  viaSocket: (socket: string, policy: Policy) => Promise<T>,
): Promise<T> {
  let policy: Policy;
  try {
    policy = loadPolicy(opts.policy, opts.set).policy;
  } catch (err) {
    if (err instanceof PolicyError) throw new CliError(err.problems.map(formatProblem).join('\n'), EXIT.usage);
    throw err;
  }
  const state = policy.state;
  if (state.backend === 'memory') {
    const socket = policy.rate.admin.socket;
    if (!socket) {
      throw new CliError(
        `${opts.policy}: state.backend is memory: the counters live inside the running gateway. ` +
          'Set rate.admin.socket (the gateway then answers this command on that UNIX socket) or use state.backend redis.',
        EXIT.unavailable,
      );
    }
    try {
      return await viaSocket(socket, policy);
    } catch (err) {
      if (err instanceof AdminError) throw new CliError(err.message, err.status === 404 ? EXIT.notFound : EXIT.usage);
      throw new CliError(`cannot reach the gateway's admin socket ${socket}: ${(err as Error).message}`, EXIT.unavailable);
    }
  }
  const redis = await connectForCommand(state).catch((err: Error) => {
    throw new CliError(err.message, EXIT.unavailable);
  });
  try {
    return await viaRedis(new RedisRateStore(redis), policy);
  } catch (err) {
    if (err instanceof AdminError) throw new CliError(err.message, EXIT.usage);
    throw err;
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`mailmoat sender: ${err.message}\n`);
    process.exitCode = err.code;
  }
}

const COLUMNS: [RateMetric, string][] = [
  ['messages', 'MSGS'],
  ['externalRecipients', 'EXT-RCPTS'],
  ['office', 'OFFICE'],
  ['fromMismatch', 'FROM-MISMATCH'],
  ['macro', 'MACRO'],
  ['spoof', 'SPOOF'],
];

function state(r: SubjectReport): string {
  if (r.suspended) return `suspended (${r.suspended.by} since ${r.suspended.since})`;
  if (r.hold) return `held (${r.hold.split('|')[0]})`;
  return '-';
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function parseWindow(text: string): number {
  const parsed = duration.safeParse(/^\d+$/.test(text) ? Number(text) : text);
  if (!parsed.success) throw new CliError(`--window ${text}: a duration such as 10m, 1h or 24h`, EXIT.usage);
  return parsed.data;
}

export function registerSender(program: Command): void {
  const sender = program
    .command('sender')
    .description('outbound sender rates: counters per sender, suspensions')
    .addHelpText(
      'after',
      `
The counters and holds live in the gateway's state: Redis (read directly), or with the embedded
memory backend in the running gateway, reached through rate.admin.socket.
ADDR is an e-mail address (counted as envelope sender and as header From) or a client IP.

Exit codes: 0 ok, 1 nothing to lift/show, 2 usage or policy error, 3 state unreachable.`,
    );
  const common = (c: Command) =>
    c
      .option('-p, --policy <file>', 'policy file (state backend, key prefix, windows)', defaultPolicyFile)
      .option('--set <key.path=value>', 'override a policy option (repeatable)', collect, [])
      .option('--json', 'JSON instead of a table');

  common(
    sender
      .command('top')
      .description('the senders with the highest counts in a window')
      .option('-w, --window <duration>', 'one of rate.windows', '1h')
      .option('-b, --by <metric>', `sort by: ${Object.keys(BY).join(' | ')}`, 'external-recipients')
      .option('-n, --limit <n>', 'how many senders', '20'),
  ).action((opts: Common & { window: string; by: string; limit: string }) =>
    run(async () => {
      const window = parseWindow(opts.window);
      const by = BY[opts.by];
      if (!by) throw new CliError(`--by ${opts.by}: one of ${Object.keys(BY).join(', ')}`, EXIT.usage);
      const limit = Number(opts.limit);
      const rows = await withState(
        opts,
        (store, policy) => top(store, policy, window, by, limit),
        (socket) => adminRequest(socket, 'GET', `/top?window=${window}&by=${opts.by}&limit=${limit}`) as Promise<SubjectReport[]>,
      );
      if (opts.json) return void process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      if (!rows.length) return void process.stdout.write(`no outbound senders in the last ${formatDuration(window)}\n`);
      const head = ['SENDER', ...COLUMNS.map(([, h]) => h), 'STATE'];
      process.stdout.write(`last ${formatDuration(window)}, by ${opts.by}\n`);
      process.stdout.write(
        table([
          head,
          ...rows.map((r) => {
            const w = r.windows.find((x) => x.window === window)!;
            return [r.subject, ...COLUMNS.map(([m]) => String(w.counts[m])), state(r)];
          }),
        ]),
      );
    }),
  );

  common(sender.command('show').description('counters per window, baseline and state of a sender').argument('<addr>', 'address or client IP')).action(
    (addr: string, opts: Common) =>
      run(async () => {
        const reports = await withState(
          opts,
          (store, policy) => show(store, policy, addr),
          (socket) => adminRequest(socket, 'GET', `/show?addr=${encodeURIComponent(addr)}`) as Promise<SubjectReport[]>,
        );
        if (opts.json) return void process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
        for (const r of reports) {
          process.stdout.write(`${r.subject}  state: ${state(r)}${r.suspended?.detail ? `: ${r.suspended.detail}` : ''}\n`);
          process.stdout.write(`  baseline: ${r.baseline.current} distinct external recipients this period, average ${r.baseline.average}\n`);
          process.stdout.write(
            table([
              ['  WINDOW', ...COLUMNS.map(([, h]) => h)],
              ...r.windows.map((w) => [`  ${formatDuration(w.window)}`, ...COLUMNS.map(([m]) => String(w.counts[m]))]),
            ]),
          );
        }
        if (reports.every((r) => !r.suspended && !r.hold && r.windows.every((w) => RATE_METRICS.every((m) => w.counts[m] === 0)))) {
          process.stdout.write(`(no outbound mail counted for ${addr} in any window)\n`);
        }
      }),
  );

  common(
    sender
      .command('suspend')
      .description('hold a sender: its mail is deferred (or quarantined, per rate.suspend.action) until unsuspend')
      .argument('<addr>', 'address or client IP')
      .option('-r, --reason <text>', 'why (shown by `sender show` and in the log)', 'suspended by an administrator'),
  ).action((addr: string, opts: Common & { reason: string }) =>
    run(async () => {
      const subjects = await withState(
        opts,
        (store, policy) => suspend(store, policy, addr, opts.reason),
        (socket) => adminRequest(socket, 'POST', `/suspend?addr=${encodeURIComponent(addr)}&reason=${encodeURIComponent(opts.reason)}`) as Promise<string[]>,
      );
      process.stdout.write(opts.json ? JSON.stringify({ suspended: subjects }) + '\n' : `suspended: ${subjects.join(', ')}\n`);
    }),
  );

  common(sender.command('unsuspend').description('lift a suspension (and any rate hold) of a sender').argument('<addr>', 'address or client IP')).action(
    (addr: string, opts: Common) =>
      run(async () => {
        const lifted = await withState(
          opts,
          (store, policy) => unsuspend(store, policy, addr),
          (socket) => adminRequest(socket, 'POST', `/unsuspend?addr=${encodeURIComponent(addr)}`) as Promise<string[]>,
        );
        if (opts.json) process.stdout.write(JSON.stringify({ lifted }) + '\n');
        else process.stdout.write(lifted.length ? `lifted: ${lifted.join(', ')}\n` : `${addr} was not suspended\n`);
        if (!lifted.length) process.exitCode = EXIT.notFound;
      }),
  );
}
