#!/usr/bin/env node
// The `mailmoat` command: one sub-command group per file in src/cli/.
import { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Command groups, loaded on demand: `mailmoat policy check` should not pay for loading the SMTP
 * server, Redis client and Office engine (seconds on a busy machine). `--help` loads them all.
 */
const groups: Record<string, () => Promise<Register>> = {
  serve: async () => (await import('./serve.js')).registerServe,
  policy: async () => (await import('./policy.js')).registerPolicy,
  quarantine: async () => (await import('./quarantine.js')).registerQuarantine,
  scan: async () => (await import('./scan.js')).registerScan,
  sender: async () => (await import('./sender.js')).registerSender,
  demo: async () => (await import('./demo.js')).registerDemo,
  console: async () => (await import('./console.js')).registerConsole,
};

// `mailmoat scan … | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const program = new Command().name('mailmoat').description('SMTP filtering gateway against Emotet-style mail').showHelpAfterError();
const wanted = process.argv[2] ?? '';
for (const load of Object.hasOwn(groups, wanted) ? [groups[wanted]] : Object.values(groups)) (await load())(program);
await program.parseAsync();
