#!/usr/bin/env node
// The `mailmoat` command: one sub-command group per file in src/cli/.
import { Command } from 'commander';
import { registerPolicy } from './policy.js';
import { registerServe } from './serve.js';

const program = new Command()
  .name('mailmoat')
  .description('SMTP filtering gateway against Emotet-style mail')
  .showHelpAfterError();
registerServe(program);
registerPolicy(program);
await program.parseAsync();
