// The console's commands as an admin runs them: `mailmoat console user ...` (the accounts file), the
// console alone (`mailmoat console`) over a quarantine a gateway fills, and the console started by
// `mailmoat serve` when console.listen is set.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { ConsoleClient, HOLD_RULE, PASSWORD } from '../helpers/console.js';
import { freePort } from '../helpers/global.js';
import { mainScript, serve, tempPolicy } from '../helpers/served.js';
import { startSink, type Sink } from '../helpers/sink.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function mailmoat(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [mainScript, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Waits until the console answers on `url`. */
async function reachable(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url + '/login');
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  assert.fail(`${url} never answered`);
}

describe('console commands', function () {
  this.timeout(120_000);
  let sink: Sink;
  let dir: string;
  let policy: string;
  before(async () => {
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-console-cli-'));
    policy = tempPolicy(
      [
        `quarantine: { dir: ${JSON.stringify(path.join(dir, 'q'))} }`,
        `console: { users: ${JSON.stringify(path.join(dir, 'users.json'))}, secretFile: ${JSON.stringify(path.join(dir, 'secret'))} }`,
        `downstream: { host: 127.0.0.1, port: ${sink.port}, starttls: off }`,
      ].join('\n') + '\n',
    );
  });
  after(() => sink.close());

  it('user add (password on stdin), list, role, remove; the file is 0600 and holds no password', async () => {
    const add = await mailmoat(['console', 'user', 'add', 'alice', '--role', 'auditor', '-p', policy], `${PASSWORD}\n`);
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /^alice: auditor in .*users\.json$/m);
    const file = path.join(dir, 'users.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!readFileSync(file, 'utf8').includes(PASSWORD));
    assert.match((await mailmoat(['console', 'user', 'list', '-p', policy])).stdout, /^alice {2}auditor {2}created /m);
    assert.equal((await mailmoat(['console', 'user', 'role', 'alice', 'admin', '-p', policy])).status, 0);
    assert.match((await mailmoat(['console', 'user', 'list', '-p', policy])).stdout, /^alice {2}admin/m);
    const badRole = await mailmoat(['console', 'user', 'add', 'bob', '--role', 'root', '-p', policy], 'x\n');
    assert.equal(badRole.status, 2);
    assert.match(badRole.stderr, /--role root: admin or auditor/);
    const badName = await mailmoat(['console', 'user', 'add', 'bad;name', '-p', policy], `${PASSWORD}\n`);
    assert.equal(badName.status, 2);
    assert.match(badName.stderr, /invalid user name "bad;name"/);
    const missing = await mailmoat(['console', 'user', 'remove', 'nobody', '-p', policy]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no user nobody in /);
  });

  it('says what is missing when console.listen is not set', async () => {
    const r = await mailmoat(['console', '-p', policy]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /console\.listen is not set/);
  });

  it('runs alone over the quarantine a gateway (serve) fills, and inside serve when console.listen is set', async () => {
    await mailmoat(['console', 'user', 'add', 'admin', '--role', 'admin', '-p', policy], `${PASSWORD}\n`);
    const consolePort = await freePort();
    // the memory backend: the console alone reads the gateway's counters through its admin socket
    const shared = ['--set', `rate.admin.socket=${path.join(dir, 'admin.sock')}`, '--set', 'network.internalDomains=["internal.test"]'];
    const gateway = await serve(policy, sink.port, ['--set', HOLD_RULE, '--set', `console.listen={host: 127.0.0.1, port: ${consolePort}}`, ...shared]);
    const alonePort = await freePort();
    const alone = spawn(process.execPath, [mainScript, 'console', '-p', policy, '--set', `console.listen={host: 127.0.0.1, port: ${alonePort}}`, ...shared], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const aloneExited = new Promise((resolve) => alone.once('exit', resolve));
    try {
      await gateway.waitFor((l) => l.event === 'console_listening');
      const r = await transaction(gateway.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], 'Subject: hold from cli\r\n\r\nbody\r\n');
      const id = /quarantined as ([0-9A-Z]{26})/.exec(text(r.data))?.[1];
      assert.ok(id, text(r.data));
      for (const port of [consolePort, alonePort]) {
        const url = `http://127.0.0.1:${port}`;
        await reachable(url);
        const client = new ConsoleClient(url);
        await client.signIn('admin');
        const list = await client.get('/quarantine');
        assert.match(list.body, new RegExp(`/quarantine/${id}`), `listed by the console on ${port}`);
        assert.match(list.body, /hold from cli/);
        const overview = (await client.get('/')).body;
        assert.match(overview, /<title>\d\d quarantine: 1<\/title>/, `the gateway's counters on ${port}`);
        assert.match(overview, /<title>SUBJECT_HOLD: 1<\/title>/);
        assert.match((await client.get('/senders?by=messages')).body, /sender:alice@internal\.test/);
      }
    } finally {
      alone.kill('SIGTERM');
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await aloneExited;
    }
  });
});
