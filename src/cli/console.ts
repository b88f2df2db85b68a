// `mailmoat console`: the web console on its own (beside gateways that share its quarantine
// directory), and `mailmoat console user add|passwd|role|remove|list`: its local accounts.
//
// Exit status: 0 done; 1 failed (the console could not start, no such user); 2 bad input (a bad
// option, policy or user name; passwords that differ).
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { standaloneState } from '../console/state.js';
import { startConsole } from '../console/server.js';
import { ROLES, UserFile, UsersFileError, type Role } from '../console/users.js';
import { createLogger } from '../observe/log.js';
import { formatProblem, loadPolicy, PolicyError } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { PolicyHolder } from '../policy/watch.js';
import { defaultPolicyFile } from './paths.js';
import { collect } from './policy.js';

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

interface Common {
  policy: string;
  set: string[];
}

function loadOrExplain(opts: Common): Policy {
  try {
    return loadPolicy(opts.policy, opts.set).policy;
  } catch (err) {
    if (err instanceof PolicyError) throw new CliError(err.problems.map(formatProblem).join('\n'), EXIT.usage);
    throw err;
  }
}

function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const code = err instanceof CliError ? err.code : err instanceof UsersFileError ? EXIT.usage : EXIT.failed;
      process.stderr.write(`mailmoat console: ${(err as Error).message}\n`);
      process.exitCode = code;
    }
  };
}

/** A password: typed twice without echo on a terminal, else the first line of standard input. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) text += (chunk as Buffer).toString('utf8');
    const line = text.split(/\r?\n/)[0] ?? '';
    if (!line) throw new CliError('no password on standard input', EXIT.usage);
    return line;
  }
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const ask = async (prompt: string) => {
    process.stderr.write(prompt);
    muted = true;
    const answer = await rl.question('');
    muted = false;
    process.stderr.write('\n');
    return answer;
  };
  try {
    const first = await ask('Password: ');
    const second = await ask('Again: ');
    if (first !== second) throw new CliError('the two passwords differ; nothing changed', EXIT.usage);
    if (first.length < 10) throw new CliError('a console password needs at least 10 characters', EXIT.usage);
    return first;
  } finally {
    rl.close();
  }
}

function parseRole(text: string): Role {
  if (!ROLES.includes(text as Role)) throw new CliError(`--role ${text}: admin or auditor`, EXIT.usage);
  return text as Role;
}

export function registerConsole(program: Command): void {
  const group = program
    .command('console')
    .description('the web console for admins: run it alone, manage its accounts')
    .addHelpText(
      'after',
      `
The console also runs inside \`mailmoat serve\` when console.listen is set in the policy.
Run alone, it serves the quarantine directory the gateways share (quarantine.dir) and reads the
sender counters from Redis (or, with the memory backend, the gateway's rate.admin.socket).

Examples:
  mailmoat console user add alice --role admin       # asks for the password twice
  echo "$PASSWORD" | mailmoat console user add bob --role auditor
  mailmoat console --set console.listen.host=127.0.0.1 --set console.listen.port=8025`,
    );
  group.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
  const common = (c: Command) =>
    c
      .option('-p, --policy <file>', 'policy file (console, quarantine.dir, state)', defaultPolicyFile)
      .option('-o, --set <key.path=value>', 'override a policy option (repeatable)', collect, []);

  common(group.command('start', { isDefault: true }).description('serve the console (console.listen) until SIGTERM')).action(
    run(async (opts: Common) => {
      const log = createLogger();
      let holder: PolicyHolder;
      try {
        holder = new PolicyHolder(opts.policy, opts.set, log);
      } catch (err) {
        if (err instanceof PolicyError) throw new CliError(err.problems.map(formatProblem).join('\n'), EXIT.usage);
        throw err;
      }
      if (!holder.policy.console.listen) {
        throw new CliError(`${opts.policy}: console.listen is not set (e.g. --set console.listen.host=127.0.0.1 --set console.listen.port=8025)`, EXIT.usage);
      }
      const state = await standaloneState(holder.policy, log);
      const running = await startConsole({ policy: () => holder.policy, state, log });
      process.stderr.write(`mailmoat console: ${running.url}\n`);
      holder.watch();
      process.on('SIGHUP', () => holder.reload('SIGHUP'));
      const stop = async () => {
        holder.close();
        await running.close();
        await state.close();
        log.info({ event: 'stopped' }, 'console stopped');
        log.flush();
        process.exit(0);
      };
      const stopOrDie = (): void => {
        stop().catch((err: unknown) => {
          log.fatal({ event: 'stop_failed', err: String(err) }, 'stopping the console failed');
          log.flush();
          process.exit(1);
        });
      };
      process.on('SIGTERM', stopOrDie);
      process.on('SIGINT', stopOrDie);
    }),
  );

  const user = group.command('user').description('local accounts of the console (console.users)');
  user.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
  common(user.command('add').description('add an account, or set its password and role').argument('<name>', 'user name'))
    .option('-r, --role <role>', 'admin (may act) or auditor (read-only)', 'admin')
    .action(
      run(async (name: string, opts: Common & { role: string }) => {
        const role = parseRole(opts.role);
        const file = new UserFile(loadOrExplain(opts).console.users);
        const password = await readPassword();
        await file.set(name, role, password);
        process.stdout.write(`${name}: ${role} in ${file.file}\n`);
      }),
    );
  common(user.command('passwd').description("change an account's password (its sessions end)").argument('<name>', 'user name')).action(
    run(async (name: string, opts: Common) => {
      const file = new UserFile(loadOrExplain(opts).console.users);
      const existing = file.get(name);
      if (!existing) throw new CliError(`no user ${name} in ${file.file}`, EXIT.failed);
      await file.set(name, existing.role, await readPassword());
      process.stdout.write(`${name}: password changed in ${file.file}\n`);
    }),
  );
  common(user.command('role').description("change an account's role").argument('<name>', 'user name').argument('<role>', 'admin or auditor')).action(
    run(async (name: string, roleText: string, opts: Common) => {
      const file = new UserFile(loadOrExplain(opts).console.users);
      file.setRole(name, parseRole(roleText));
      process.stdout.write(`${name}: ${roleText} in ${file.file}\n`);
    }),
  );
  common(user.command('remove').description('remove an account (its sessions end at once)').argument('<name>', 'user name')).action(
    run(async (name: string, opts: Common) => {
      const file = new UserFile(loadOrExplain(opts).console.users);
      file.remove(name);
      process.stdout.write(`${name}: removed from ${file.file}\n`);
    }),
  );
  common(user.command('list').description('the accounts and their roles')).action(
    run(async (opts: Common) => {
      const file = new UserFile(loadOrExplain(opts).console.users);
      const users = Object.entries(file.read());
      if (!users.length) process.stdout.write(`no accounts in ${file.file}\n`);
      for (const [name, u] of users) process.stdout.write(`${name}  ${u.role}  created ${u.created}  changed ${u.changed}\n`);
    }),
  );
}
