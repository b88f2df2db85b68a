// `mailmoat quarantine ...`: list, show, release, delete and purge quarantined messages, and send
// the recipients' digests.
//
// Exit status: 0 done; 1 refused or failed (already released, locked by another release, the
// downstream refused or could not be reached: the item stays held); 2 bad input (an id that is not a
// ULID, no such item, corrupt metadata, a bad option or policy), nothing changed; 3 a release that
// reached only some recipients; 4 a release whose outcome is unknown (the connection broke after the
// message was sent: check the MTA before `--force`).
import os from 'node:os';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { simpleParser } from 'mailparser';
import { createHash } from 'node:crypto';
import { headerFieldsOf } from '../message/parsed.js';
import { formatProblem, loadPolicy, PolicyError } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { formatReply } from '../relay/smtp-client.js';
import { initTokenKey, TokenKeyError } from '../console/tokens.js';
import { sendDigests } from '../quarantine/digest.js';
import { escapeControl } from '../quarantine/escape.js';
import { formatItem, formatTable, matches, parseSince, type ListFilter } from '../quarantine/query.js';
import { deleteItem, executePurge, planPurge, release, type ReleaseResult } from '../quarantine/release.js';
import { describeTrust, trustSender, untrustSender, type TrustedServers } from '../quarantine/trust.js';
import { declineRequest } from '../quarantine/requests.js';
import { createLogger } from '../observe/log.js';
import { closeState, connectForCommand, type StateBackend } from '../state/index.js';
import { threadMemoryFor, type ThreadMemory } from '../state/thread-memory.js';
import { checkId, QuarantineError, QuarantineStore, type QuarantineMetadata, type QuarantineState } from '../quarantine/store.js';
import { defaultPolicyFile } from './paths.js';
import { collect } from './policy.js';

export const EXIT = { ok: 0, refused: 1, usage: 2, partial: 3, unknown: 4 } as const;

/** Bad input: exit 2, nothing changed. */
class UsageError extends Error {}

interface CommonOptions {
  policy: string;
  set: string[];
}

interface FilterOptions {
  since?: string;
  symbol: string[];
  sender?: string;
  recipient?: string;
  state?: string;
}

function open(opts: CommonOptions): { policy: Policy; store: QuarantineStore } {
  try {
    const { policy } = loadPolicy(opts.policy, opts.set);
    return { policy, store: new QuarantineStore(policy.quarantine.dir) };
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    throw new UsageError(err.problems.map(formatProblem).join('\n'));
  }
}

/** "ID: sender trusted: … now known through …" (or no longer), control characters escaped. */
function printTrust(id: string, trusted: TrustedServers, known: boolean): void {
  process.stdout.write(`${id}: sender ${known ? '' : 'no longer '}trusted: ${escapeControl(describeTrust(trusted, known))}\n`);
}

/**
 * The thread memory the gateways use, for trust, untrust and release --trust-sender: in Redis. The embedded in-memory backend
 * lives inside the running gateway, out of this process's reach: the console (in the gateway's
 * process) releases and trusts there.
 */
async function openThreadMemory(policyFile: string, policy: Policy, what: string): Promise<{ memory: ThreadMemory; close: () => Promise<void> }> {
  const state = policy.state;
  if (state.backend === 'memory') {
    throw new UsageError(
      `${policyFile}: state.backend is memory: the thread memory lives inside the running gateway, out of this command's reach. ` +
        'Use the console (inside mailmoat serve), or state.backend redis.',
    );
  }
  const redis = await connectForCommand(state).catch((err: Error) => {
    throw new QuarantineError(`${what}: ${err.message}; nothing changed`, 'io');
  });
  const backend: StateBackend = { kind: 'redis', redis, failMode: 'closed' };
  return { memory: threadMemoryFor(backend, policy.spoof.keyPrefix), close: () => closeState(backend) };
}

function operatorName(given?: string): string {
  const name = given ?? process.env.MAILMOAT_OPERATOR ?? process.env.SUDO_USER ?? process.env.USER ?? process.env.LOGNAME ?? safeUser();
  if (!/^[\x21-\x7e][\x20-\x7e]{0,99}$/.test(name) || name.includes(';')) {
    throw new UsageError(`invalid operator ${JSON.stringify(name)}: printable ASCII without ";", at most 100 characters (--operator or MAILMOAT_OPERATOR)`);
  }
  return name;
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

const STATES: QuarantineState[] = ['held', 'released', 'deleted'];

function buildFilter(opts: FilterOptions, defaultStates: QuarantineState[]): ListFilter {
  const filter: ListFilter = { states: defaultStates };
  if (opts.since !== undefined) {
    const since = parseSince(opts.since);
    if (since === undefined) throw new UsageError(`--since ${JSON.stringify(opts.since)}: expected 30m, 12h, 2d, 1w or a date such as 2024-05-01`);
    filter.since = since;
  }
  if (opts.symbol.length) filter.symbols = opts.symbol;
  if (opts.sender !== undefined) filter.sender = opts.sender;
  if (opts.recipient !== undefined) filter.recipient = opts.recipient;
  if (opts.state !== undefined) {
    if (opts.state === 'all') filter.states = STATES;
    else {
      const states = opts.state.split(',');
      const bad = states.find((s) => !STATES.includes(s as QuarantineState));
      if (bad !== undefined) throw new UsageError(`--state ${JSON.stringify(bad)}: expected held, released, deleted or all`);
      filter.states = states as QuarantineState[];
    }
  }
  return filter;
}

function addFilterOptions(command: Command): Command {
  return command
    .option('--since <when>', 'received within 30m, 12h, 2d, 1w, or since a date (2024-05-01)')
    .option('--symbol <SYMBOL>', 'has a finding with this symbol (repeatable: any of them)', collect, [])
    .option('--sender <address>', 'envelope sender contains this (or ends with @domain)')
    .option('--recipient <address>', 'an envelope recipient contains this (or ends with @domain)');
}

function addCommon(command: Command): Command {
  return command
    .option('-p, --policy <file>', 'policy file (quarantine.dir, the downstream, retention)', defaultPolicyFile)
    .option('-o, --set <key.path=value>', 'override a policy option, e.g. quarantine.dir=/srv/q (repeatable)', collect, []);
}

/** Runs an action and turns what it throws into a message and an exit status. */
function run<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`mailmoat quarantine: ${err.message}\n`);
        process.exitCode = EXIT.usage;
      } else if (err instanceof QuarantineError) {
        process.stderr.write(`mailmoat quarantine: ${err.message}\n`);
        process.exitCode = ['invalid-id', 'not-found', 'corrupt', 'usage'].includes(err.kind) ? EXIT.usage : EXIT.refused;
      } else {
        process.stderr.write(`mailmoat quarantine: ${(err as Error).message}\n`);
        process.exitCode = EXIT.refused;
      }
    }
  };
}

function ids(given: string[]): string[] {
  for (const id of given) checkId(id);
  return given;
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** The items a bulk `--all` form selects: held, no release pending, matching the filters. */
async function selectBulk(store: QuarantineStore, opts: FilterOptions & { yes?: boolean }, verb: string): Promise<string[]> {
  const filter = buildFilter({ ...opts, state: undefined }, ['held']);
  const { items, problems } = await store.list(filter.since);
  for (const p of problems) process.stderr.write(`mailmoat quarantine: skipped: ${p.message}\n`);
  const chosen = items.filter((m) => matches(m, filter) && !m.pendingRelease);
  if (!chosen.length) {
    process.stderr.write(`mailmoat quarantine: no held message matches; nothing to ${verb}\n`);
    return [];
  }
  if (!opts.yes) {
    process.stderr.write(formatTable(chosen));
    if (!(await confirm(`${verb} these ${chosen.length} messages?`))) {
      throw new UsageError(`${chosen.length} messages match; nothing done. Add --yes to ${verb} them without asking`);
    }
  }
  return chosen.map((m) => m.id);
}

function printRelease(result: ReleaseResult): number {
  const out = result.status === 'released' ? process.stdout : process.stderr;
  for (const r of result.recipients) out.write(`${result.id}: ${escapeControl(r.rcpt)}: ${formatReply(r.reply)}\n`);
  const verdictWord = { released: 'released', partial: 'released in part', failed: 'NOT released (still held)', unknown: 'release outcome UNKNOWN' }[
    result.status
  ];
  out.write(`${result.id}: ${verdictWord} via ${result.downstream}: ${escapeControl(result.reason)}\n`);
  if (result.status === 'unknown') {
    out.write(`${result.id}: the downstream may have it: check its log for "id=${result.id}" before release --force\n`);
  }
  if (result.recordError)
    process.stderr.write(`${result.id}: delivered, but the outcome could not be recorded (${result.recordError}); a later release will ask for --force\n`);
  return { released: EXIT.ok, partial: EXIT.partial, failed: EXIT.refused, unknown: EXIT.unknown }[result.status];
}

export function registerQuarantine(program: Command): void {
  const group = program
    .command('quarantine')
    .description("list, inspect, release, delete and purge quarantined messages; send the recipients' digests")
    .addHelpText(
      'after',
      `
Exit status: 0 done; 1 refused or failed (already released, locked, downstream refused: the item
stays held); 2 bad input (not a ULID, no such item, corrupt metadata, bad option), nothing changed;
3 released to some recipients only; 4 release outcome unknown (check the MTA before --force).`,
    );
  // usage errors (unknown option, missing argument) are bad input too
  group.exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  });

  addFilterOptions(addCommon(group.command('list')))
    .description('list quarantined messages, oldest first (default: held and released)')
    .option('--state <state>', 'held, released, deleted (comma-separated) or all')
    .option('--json', 'print the metadata as a JSON array')
    .action(
      run(async (opts: CommonOptions & FilterOptions & { json?: boolean }) => {
        const { store } = open(opts);
        const filter = buildFilter(opts, ['held', 'released']);
        const { items, problems } = await store.list(filter.since);
        const shown = items.filter((m) => matches(m, filter));
        process.stdout.write(
          opts.json ? JSON.stringify(shown, null, 2) + '\n' : shown.length ? formatTable(shown) : `no quarantined messages match in ${store.dir}\n`,
        );
        for (const p of problems) process.stderr.write(`mailmoat quarantine: ${p.message}\n`);
        return problems.length ? EXIT.usage : EXIT.ok;
      }),
    );

  addCommon(group.command('show'))
    .description('show one message: envelope, findings, headers, history')
    .argument('<id>', 'the quarantine id (a ULID)')
    .option('--raw', 'print the message exactly as received')
    .option('--attachments', 'list the MIME parts and what was found in each')
    .option('--json', 'print the metadata as JSON')
    .action(
      run(async (id: string, opts: CommonOptions & { raw?: boolean; attachments?: boolean; json?: boolean }) => {
        checkId(id);
        const { store } = open(opts);
        const meta = await store.get(id);
        if (opts.raw) {
          const bytes = await store.readMessage(id);
          await new Promise<void>((resolve) => process.stdout.write(bytes, () => resolve()));
          return EXIT.ok;
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify(meta, null, 2) + '\n');
          return EXIT.ok;
        }
        const bytes = meta.state === 'deleted' ? undefined : await store.readMessage(id).catch(() => undefined);
        process.stdout.write(formatItem(meta, bytes ? headerFieldsOf(bytes) : []));
        if (opts.attachments) {
          if (!bytes) throw new QuarantineError(`${id}: message file ${store.emlFile(id)} is gone; no parts to list`, 'not-found');
          process.stdout.write('\n' + (await formatAttachments(bytes, meta)));
        }
        return EXIT.ok;
      }),
    );

  addFilterOptions(addCommon(group.command('release')))
    .description('deliver held messages downstream with their original envelope and bytes (plus a release header)')
    .argument('[ids...]', 'quarantine ids (ULIDs)')
    .option('--to <address>', 'only these of the original recipients (repeatable)', collect, [])
    .option('--force', 'deliver again although already released, or after a release whose outcome is unknown')
    .option('--all', 'every held message matching --since/--symbol/--sender/--recipient')
    .option('-y, --yes', 'with --all: do not ask')
    .option('--operator <name>', 'who releases, for the header and the audit log (default: $MAILMOAT_OPERATOR, $SUDO_USER, $USER)')
    .option(
      '--trust-sender',
      "once released, teach the thread memory that the servers it came through are the sender's (a reply held as a spoof that was genuine: the next one is not held)",
    )
    .action(
      run(
        async (
          given: string[],
          opts: CommonOptions & FilterOptions & { to: string[]; force?: boolean; all?: boolean; yes?: boolean; operator?: string; trustSender?: boolean },
        ) => {
          const operator = operatorName(opts.operator);
          if (opts.all && given.length) throw new UsageError('give ids or --all, not both');
          if (!opts.all && !given.length) throw new UsageError('name the ids to release, or --all with filters');
          if (opts.all && opts.trustSender) throw new UsageError('--trust-sender names the messages one by one: give ids, not --all');
          ids(given);
          const { policy, store } = open(opts);
          const memory = opts.trustSender ? await openThreadMemory(opts.policy, policy, '--trust-sender') : undefined;
          try {
            const targets = opts.all ? await selectBulk(store, opts, 'release') : given;
            let status: number = EXIT.ok;
            for (const id of targets) {
              let code: number;
              try {
                const result = await release(store, id, policy, { operator, force: opts.force, to: opts.to });
                code = printRelease(result);
                if (memory && (result.status === 'released' || result.status === 'partial')) {
                  printTrust(id, await trustSender(store, id, policy, memory.memory, operator), true);
                }
              } catch (err) {
                if (!(err instanceof QuarantineError) || targets.length === 1) throw err;
                process.stderr.write(`mailmoat quarantine: ${err.message}\n`);
                code = ['invalid-id', 'not-found', 'corrupt', 'usage'].includes(err.kind) ? EXIT.usage : EXIT.refused;
              }
              status = Math.max(status, code);
            }
            return status;
          } finally {
            await memory?.close();
          }
        },
      ),
    );

  addFilterOptions(addCommon(group.command('delete')))
    .description('delete held or released messages (the metadata stays, marked deleted, as the record)')
    .argument('[ids...]', 'quarantine ids (ULIDs)')
    .option('--force', 'delete although a release outcome is unknown')
    .option('--all', 'every held message matching --since/--symbol/--sender/--recipient')
    .option('-y, --yes', 'with --all: do not ask')
    .option('--operator <name>', 'who deletes, for the audit log')
    .action(
      run(async (given: string[], opts: CommonOptions & FilterOptions & { force?: boolean; all?: boolean; yes?: boolean; operator?: string }) => {
        const operator = operatorName(opts.operator);
        if (opts.all && given.length) throw new UsageError('give ids or --all, not both');
        if (!opts.all && !given.length) throw new UsageError('name the ids to delete, or --all with filters');
        ids(given);
        const { store } = open(opts);
        const targets = opts.all ? await selectBulk(store, opts, 'delete') : given;
        let status: number = EXIT.ok;
        for (const id of targets) {
          try {
            await deleteItem(store, id, { operator, force: opts.force });
            process.stdout.write(`${id}: deleted (${store.emlFile(id)} removed; metadata kept)\n`);
          } catch (err) {
            if (!(err instanceof QuarantineError) || targets.length === 1) throw err;
            process.stderr.write(`mailmoat quarantine: ${err.message}\n`);
            status = Math.max(status, ['invalid-id', 'not-found', 'corrupt', 'usage'].includes(err.kind) ? EXIT.usage : EXIT.refused);
          }
        }
        return status;
      }),
    );

  addCommon(group.command('trust'))
    .description("teach the thread memory that the servers a released message came through are its sender's (release --trust-sender, afterwards)")
    .argument('<id>', 'quarantine id (ULID) of a released message')
    .option('--operator <name>', 'who trusts, for the history and the audit log')
    .action(
      run(async (id: string, opts: CommonOptions & { operator?: string }) => {
        const operator = operatorName(opts.operator);
        checkId(id);
        const { policy, store } = open(opts);
        const memory = await openThreadMemory(opts.policy, policy, 'trust');
        try {
          printTrust(id, await trustSender(store, id, policy, memory.memory, operator), true);
          return EXIT.ok;
        } finally {
          await memory.close();
        }
      }),
    );

  addCommon(group.command('untrust'))
    .description('take back release --trust-sender: the thread memory forgets the servers that trust taught (genuine mail through them teaches them again)')
    .argument('<id>', 'quarantine id (ULID) released with --trust-sender')
    .option('--operator <name>', 'who takes it back, for the history and the audit log')
    .action(
      run(async (id: string, opts: CommonOptions & { operator?: string }) => {
        const operator = operatorName(opts.operator);
        checkId(id);
        const { policy, store } = open(opts);
        const memory = await openThreadMemory(opts.policy, policy, 'untrust');
        try {
          printTrust(id, await untrustSender(store, id, memory.memory, operator), false);
          return EXIT.ok;
        } finally {
          await memory.close();
        }
      }),
    );

  addCommon(group.command('decline'))
    .description("decline a recipient's request to release a held message: it stays held, and the recipient is told by mail")
    .argument('<id>', 'quarantine id (ULID)')
    .requiredOption('--recipient <address>', 'the recipient whose pending request is declined')
    .option('--reason <text>', 'why, sent to the recipient')
    .option('--operator <name>', 'who declines, for the history and the audit log')
    .action(
      run(async (id: string, opts: CommonOptions & { recipient: string; reason?: string; operator?: string }) => {
        const operator = operatorName(opts.operator);
        checkId(id);
        const { policy, store } = open(opts);
        const log = createLogger('warn', process.stderr);
        const result = await declineRequest({ store, policy, log }, id, opts.recipient, { operator, ...(opts.reason ? { reason: opts.reason } : {}) });
        process.stdout.write(
          `${id}: request of ${escapeControl(opts.recipient)} declined; ` +
            (result.notified ? `${escapeControl(result.notified)} told by mail\n` : `the notice was NOT sent: ${escapeControl(result.notifyError ?? '')}\n`),
        );
        return EXIT.ok;
      }),
    );

  registerDigest(group);

  addCommon(group.command('purge'))
    .description('remove messages older than quarantine.retention; a dry run unless --yes')
    .option('--dry-run', 'only list what would be removed (the default)')
    .option('-y, --yes', 'remove them (e.g. from cron: mailmoat quarantine purge --yes)')
    .option('--operator <name>', 'who purges, for the audit log')
    .action(
      run(async (opts: CommonOptions & { dryRun?: boolean; yes?: boolean; operator?: string }) => {
        if (opts.dryRun && opts.yes) throw new UsageError('--dry-run and --yes contradict each other');
        const operator = operatorName(opts.operator);
        const { policy, store } = open(opts);
        const retention = policy.quarantine.retention;
        if (retention <= 0) process.stderr.write('mailmoat quarantine: quarantine.retention is 0: messages are kept forever\n');
        const plan = await planPurge(store, retention);
        const days = Math.round((retention / 86_400_000) * 10) / 10;
        if (!opts.yes) {
          for (const item of plan.expired)
            process.stdout.write(`would remove ${item.id}  received ${item.receivedAt}  ${item.state ?? '(metadata unreadable)'}\n`);
          for (const file of plan.stray) process.stdout.write(`would remove leftover ${file}\n`);
          process.stdout.write(`dry run: ${plan.expired.length} messages older than ${days} days in ${store.dir}; run with --yes to remove them\n`);
          return EXIT.ok;
        }
        const { removed, skipped } = await executePurge(store, plan, operator);
        for (const id of removed) process.stdout.write(`removed ${id}\n`);
        for (const s of skipped) process.stderr.write(`mailmoat quarantine: kept ${s.id}: ${s.reason}\n`);
        process.stdout.write(
          `purged ${removed.length} messages older than ${days} days from ${store.dir}${plan.stray.length ? ` and ${plan.stray.length} leftover files` : ''}\n`,
        );
        return skipped.length ? EXIT.refused : EXIT.ok;
      }),
    );
}

function registerDigest(group: Command): void {
  addCommon(group.command('digest'))
    .description('mail each internal recipient the messages held for them since their last digest, with links (quarantine.digest)')
    .option('--dry-run', 'print what each recipient would get; send nothing, record nothing')
    .option('--since <when>', 'list messages received within 30m, 12h, 2d, 1w or since a date, whatever each recipient had before')
    .option('--init-key', 'create the link key file named by quarantine.digest.keyFile (48 random bytes, mode 0600), then stop')
    .addHelpText(
      'after',
      `
Run it from cron (e.g. daily: 30 8 * * * mailmoat quarantine digest), or set quarantine.digest.schedule
for \`serve\` to send it. Needs quarantine.digest.baseUrl and keyFile. Exit: 0 sent (or nothing to send);
1 some digests not sent (those recipients get the same messages next time); 2 bad option or policy.`,
    )
    .action(
      run(async (opts: CommonOptions & { dryRun?: boolean; since?: string; initKey?: boolean }) => {
        const { policy, store } = open(opts);
        try {
          if (opts.initKey) {
            const file = policy.quarantine.digest.keyFile;
            if (!file) throw new UsageError('quarantine.digest.keyFile is not set: name the key file in the policy first, e.g. /etc/mailmoat/link.key');
            await initTokenKey(file);
            process.stdout.write(`created ${file} (mode 0600); keep it private: whoever has it can make links to any held message\n`);
            return EXIT.ok;
          }
          let since: number | undefined;
          if (opts.since !== undefined) {
            since = parseSince(opts.since);
            if (since === undefined) throw new UsageError(`--since ${JSON.stringify(opts.since)}: expected 30m, 12h, 2d, 1w or a date such as 2024-05-01`);
          }
          const result = await sendDigests(store, policy, { dryRun: opts.dryRun, since, operator: operatorName() });
          for (const p of result.problems) process.stderr.write(`mailmoat quarantine: skipped: ${p}\n`);
          if (opts.dryRun) {
            for (const d of result.digests) {
              process.stdout.write(`${escapeControl(d.recipient)} (${d.language}): ${d.entries.length} held\n`);
              for (const e of d.entries)
                process.stdout.write(`  ${e.id}  ${e.right.padEnd(7)}  ${escapeControl(e.sender).slice(0, 60)}  ${escapeControl(e.subject).slice(0, 60)}\n`);
            }
            process.stdout.write(`dry run: ${result.digests.length} digests would be sent; nothing sent or recorded\n`);
            return EXIT.ok;
          }
          for (const o of result.outcomes) {
            const line = `${escapeControl(o.recipient)}: ${o.items} held: ${o.status === 'sent' ? `sent (${escapeControl(o.response ?? '')})` : `NOT sent: ${escapeControl(o.error ?? '')}`}\n`;
            (o.status === 'sent' ? process.stdout : process.stderr).write(line);
          }
          const failed = result.outcomes.filter((o) => o.status === 'failed').length;
          process.stdout.write(`${result.outcomes.length - failed} digests sent${failed ? `, ${failed} not sent` : ''}\n`);
          return failed ? EXIT.refused : EXIT.ok;
        } catch (err) {
          if (err instanceof TokenKeyError) throw new UsageError(err.message);
          throw err;
        }
      }),
    );
}

async function formatAttachments(bytes: Buffer, meta: QuarantineMetadata): Promise<string> {
  const parsed = await simpleParser(bytes, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const lines = [`attachments (${parsed.attachments.length}):`];
  const claimed = new Set<number>();
  for (const a of parsed.attachments) {
    const name = a.filename ?? '(unnamed)';
    const sha = createHash('sha256').update(a.content).digest('hex');
    lines.push(`  ${escapeControl(name)}  ${escapeControl(a.contentType)}  ${a.size} bytes  sha256 ${sha}`);
    meta.findings.forEach((f, i) => {
      if (f.part === undefined || !(f.part === name || f.part.startsWith(`${name} > `) || f.part.startsWith(`${name}>`))) return;
      claimed.add(i);
      lines.push(`    ${f.symbol} (${f.score})${f.part !== name ? ` in ${escapeControl(f.part)}` : ''}${f.detail ? `: ${escapeControl(f.detail)}` : ''}`);
    });
  }
  const rest = meta.findings.filter((_f, i) => !claimed.has(i));
  if (rest.length) {
    lines.push('  (message as a whole)');
    for (const f of rest)
      lines.push(`    ${f.symbol} (${f.score})${f.part ? ` in ${escapeControl(f.part)}` : ''}${f.detail ? `: ${escapeControl(f.detail)}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
