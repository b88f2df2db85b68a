// `mailmoat demo`: the gateway in front of a stand-in MTA, sample mail sent through it (src/demo/).
import path from 'node:path';
import type { Command } from 'commander';

/** How to name this command in hints: `mailmoat` when run as the installed command, else the script. */
function cliName(): string {
  const script = process.argv[1] ?? '';
  return path.basename(script) === 'mailmoat' ? 'mailmoat' : `node ${path.relative(process.cwd(), script) || script}`;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('show the gateway at work: a stand-in MTA, sample mail (clean, macro, hijacked reply, Word burst), a release')
    .option('--exit', 'stop after the summary instead of running until Ctrl-C')
    .addHelpText(
      'after',
      `
Runs on free loopback ports with the embedded in-memory state (no Redis, no MTA needed) and a
temporary spool and quarantine, removed when the demo ends. Exit status: 0 when every step went as
expected, 1 otherwise.`,
    )
    .action(async (opts: { exit?: boolean }) => {
      const { runDemo } = await import('../demo/run.js');
      const status = await runDemo({ exit: Boolean(opts.exit), cli: cliName() });
      process.exit(status); // the scan workers and sockets are closed; nothing else is worth waiting for
    });
}
