// `mailmoat policy check [FILE]`: validates a policy like `postfix check`, one line per problem.
import type { Command } from 'commander';
import { formatProblem, loadPolicy, PolicyError } from '../policy/load.js';
import { defaultPolicyFile } from './paths.js';

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('work with policy files');
  policy
    .command('check')
    .description('validate a policy file; exit 0 when valid, 1 with file:line:column errors otherwise')
    .argument('[file]', 'policy file', defaultPolicyFile)
    .option('--set <key.path=value>', 'override an option, as `serve` would (repeatable)', collect, [])
    .action((file: string, opts: { set: string[] }) => {
      try {
        const { version } = loadPolicy(file, opts.set);
        process.stdout.write(`${file}: ok (version ${version})\n`);
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        for (const problem of err.problems) process.stderr.write(formatProblem(problem) + '\n');
        process.stderr.write(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}\n`);
        process.exitCode = 1;
      }
    });
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
