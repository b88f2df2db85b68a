#!/usr/bin/env node
// The `mailmoat` command: one sub-command group per file in src/cli/.
import { Command } from 'commander';
import { registerPolicy } from './policy.js';
import { registerQuarantine } from './quarantine.js';
import { registerScan } from './scan.js';
import { registerServe } from './serve.js';

// `mailmoat scan … | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const program = new Command()
  .name('mailmoat')
  .description('SMTP filtering gateway against Emotet-style mail')
  .showHelpAfterError();
registerServe(program);
registerPolicy(program);
registerQuarantine(program);
registerScan(program);
await program.parseAsync();
