// The policy file: schema defaults, errors an admin can act on, overrides, hot reload.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadPolicy, parsePolicy } from '../../src/policy/load.js';
import { policySchema } from '../../src/policy/schema.js';
import { PolicyHolder } from '../../src/policy/watch.js';
import { defaultPolicyFile } from '../helpers/gateway.js';
import { capturedLogger } from '../helpers/logs.js';
import { policyProblems as problems } from '../helpers/policy.js';

describe('policy file', function () {
  it('policies/default.yaml states exactly the built-in defaults (the documentation cannot drift)', () => {
    assert.deepEqual(loadPolicy(defaultPolicyFile).policy, policySchema.parse({}));
  });

  it('documents every option with a comment', () => {
    const lines = readFileSync(defaultPolicyFile, 'utf8').split('\n');
    const undocumented = lines
      .map((line, i) => ({ line, i }))
      .filter(({ line }) => /^\s*[a-zA-Z]+:/.test(line))
      .filter(({ i }) => !/^\s*#/.test(lines[i - 1] ?? '') && !/^\s*[a-zA-Z]+:\s*$/.test(lines[i]) && !/#/.test(lines[i]))
      .map(({ line }) => line.trim());
    // sub-keys of a documented block (host/port, cert/key) are self-explanatory
    assert.deepEqual(
      undocumented.filter((l) => !/^(host|port|tag|quarantine|reject|defer):/.test(l)),
      [],
    );
  });

  it('parses durations and sizes', () => {
    const { policy } = parsePolicy('timeouts: { client: 2m, drain: 1500ms }\nlimits: { maxMessageSize: 10MB }\n', 'p.yaml');
    assert.equal(policy.timeouts.client, 120_000);
    assert.equal(policy.timeouts.drain, 1500);
    assert.equal(policy.limits.maxMessageSize, 10 * 1024 * 1024);
  });

  it('names file:line:column, the key and what was expected for a wrong type', () => {
    const p = problems('listen:\n  host: 0.0.0.0\n  port: twenty-five\n');
    assert.deepEqual(p, [{ where: 'p.yaml:3:3', key: 'listen.port', message: 'Invalid input: expected number, received string' }]);
  });

  it('names unknown options (a typo is not silently ignored)', () => {
    const p = problems('limits:\n  maxRecipient: 10\n');
    assert.deepEqual(p, [{ where: 'p.yaml:2:3', key: 'limits.maxRecipient', message: 'unknown option' }]);
  });

  it('lists the allowed values of an enumeration, and checks CIDRs and regular expressions', () => {
    const p = problems(
      'downstream: { host: mta, port: 25, starttls: maybe }\nnetwork:\n  internalNetworks: [10.0.0.0/33]\nrules:\n  headers:\n    - { symbol: X, header: Subject, match: "(" }\n',
    );
    assert.deepEqual(
      p.map((x) => `${x.where} ${x.key}: ${x.message}`),
      [
        'p.yaml:1:36 downstream.starttls: expected one of "off", "opportunistic", "required"',
        'p.yaml:3:22 network.internalNetworks.0: a network in CIDR form, e.g. 10.0.0.0/8 or ::1/128',
        'p.yaml:6:37 rules.headers.0.match: a valid regular expression',
      ],
    );
  });

  it('refuses actions the gateway does not know, listing those it does', () => {
    const p = problems('rules:\n  size:\n    - { symbol: BIG, over: 1MB, action: bounce }\n');
    assert.equal(p[0].key, 'rules.size.0.action');
    assert.match(p[0].message, /"relay", "tag", "quarantine", "defer", "reject"/);
  });

  it('verdict.symbols refines the built-in symbol defaults instead of replacing them', () => {
    const { policy } = parsePolicy('verdict:\n  symbols:\n    OFFICE_MACRO: { action: reject }\n    MY_RULE: { score: 2 }\n', 'p.yaml');
    assert.deepEqual(policy.verdict.symbols.OFFICE_MACRO, { score: 10, action: 'reject' });
    assert.deepEqual(policy.verdict.symbols.OFFICE_XLM_MACRO, { score: 10, action: 'quarantine' });
    assert.deepEqual(policy.verdict.symbols.MY_RULE, { score: 2 });
  });

  it('reports YAML syntax errors with their position', () => {
    const p = problems('listen:\n  host: [unclosed\n');
    assert.match(p[0].where, /^p\.yaml:\d+:\d+$/);
  });

  it('--set overrides are validated by the same schema and named as such', () => {
    const { policy } = parsePolicy('', 'p.yaml', ['limits.maxRecipients=5', 'network.internalDomains=[a.test, B.TEST]']);
    assert.equal(policy.limits.maxRecipients, 5);
    assert.deepEqual(policy.network.internalDomains, ['a.test', 'b.test']);
    const p = problems('', ['limits.maxRecipients=many']);
    assert.deepEqual(p, [{ where: '--set limits.maxRecipients', key: 'limits.maxRecipients', message: 'Invalid input: expected number, received string' }]);
  });

  it('the version is a hash of the effective policy', () => {
    const a = parsePolicy('limits: { maxClients: 10 }', 'a.yaml');
    const b = parsePolicy('# same policy, other text\nlimits:\n  maxClients: 10\n', 'b.yaml');
    const c = parsePolicy('limits: { maxClients: 11 }', 'c.yaml');
    assert.equal(a.version, b.version);
    assert.notEqual(a.version, c.version);
    assert.match(a.version, /^[0-9a-f]{12}$/);
  });
});

describe('policy reload', function () {
  function holderFor(text: string) {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-policy-'));
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(file, text);
    const { log, logs } = capturedLogger('info');
    return { file, logs, holder: new PolicyHolder(file, [], log) };
  }

  it('an invalid edit is logged with its problems and the last good policy stays active', () => {
    const { file, logs, holder } = holderFor('limits: { maxClients: 10 }\n');
    const good = holder.version;
    writeFileSync(file, 'limits: { maxClients: -1 }\n');
    assert.equal(holder.reload('test'), false);
    assert.equal(holder.policy.limits.maxClients, 10);
    assert.equal(holder.version, good);
    const rejected = logs.find((l) => l.event === 'policy_rejected')!;
    assert.equal(rejected.activeVersion, good);
    assert.match(JSON.stringify(rejected.problems), /policy\.yaml:1:11/);
  });

  it('a valid edit is picked up by the file watch and logged with its new version', async () => {
    const { file, logs, holder } = holderFor('limits: { maxClients: 10 }\n');
    const seen: number[] = [];
    holder.onChange(({ policy }) => seen.push(policy.limits.maxClients));
    holder.watch();
    try {
      // editors replace the file by rename: do the same
      writeFileSync(file + '.tmp', 'limits: { maxClients: 20 }\n');
      const { renameSync } = await import('node:fs');
      renameSync(file + '.tmp', file);
      for (let i = 0; i < 100 && !seen.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(seen, [20]);
      const loaded = logs.filter((l) => l.event === 'policy_loaded');
      assert.equal(loaded.at(-1)!.version, holder.version);
      assert.equal(loaded.at(-1)!.reason, 'file changed');
    } finally {
      holder.close();
    }
  });
});
