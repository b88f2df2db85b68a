// Policy texts the loader must refuse, for tests: the problems it reports, file:line:column and all.
import assert from 'node:assert/strict';
import { parsePolicy, PolicyError, type PolicyProblem } from '../../src/policy/load.js';

/** The problems `text` (a policy file's content) and `--set` `overrides` are refused with; fails the test when accepted. */
export function policyProblems(text: string, overrides: string[] = []): PolicyProblem[] {
  try {
    parsePolicy(text, 'p.yaml', overrides);
  } catch (err) {
    assert.ok(err instanceof PolicyError);
    return err.problems;
  }
  assert.fail('expected the policy to be rejected');
}
