// The quarantine end to end: a message held through SMTP, then listed, shown, released, deleted and
// purged with the `mailmoat quarantine` command run as a real process against a real downstream.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { repoRoot, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';
import type { QuarantineMetadata } from '../../src/quarantine/store.js';
import { mailmoat } from '../helpers/cli.js';

const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const MAIL = 'MAIL FROM:<alice@internal.test> SIZE=500 BODY=8BITMIME';
const RCPTS = ['RCPT TO:<bob@outside.test> NOTIFY=FAILURE ORCPT=rfc822;bob@outside.test', 'RCPT TO:<carol@outside.test>'];
const RULE = 'rules.headers=[{symbol: SUBJECT_HOLD, header: Subject, match: "^hold", score: 4, action: quarantine}]';

const cli = (args: string[]) => mailmoat(['quarantine', ...args]);

describe('quarantine end to end (mailmoat quarantine as a process)', function () {
  // each CLI call is a fresh node process (about a second on a busy machine)
  this.timeout(180_000);
  let sink: Sink;
  let gw: RunningGateway;
  let dir: string;
  let policyFile: string;
  let p: string[];

  before(async () => {
    sink = await startSink();
    const root = mkdtempSync(path.join(tmpdir(), 'mailmoat-qe-'));
    dir = path.join(root, 'quarantine');
    gw = await startGateway(sink.port, [RULE, `quarantine.dir=${dir}`]);
    policyFile = path.join(root, 'policy.yaml');
    writeFileSync(policyFile, `downstream: { host: 127.0.0.1, port: ${sink.port}, starttls: off }\nquarantine:\n  dir: ${JSON.stringify(dir)}\n`);
    p = ['--policy', policyFile];
  });

  after(async () => {
    await gw.close();
    await sink.close();
  });

  async function hold(subject: string, body = 'Hello there.'): Promise<{ id: string; message: Buffer }> {
    const message = Buffer.from(messages.dotLines().toString().replace('Subject: dots', `Subject: ${subject}`).replace('\r\n\r\n', `\r\n\r\n${body}\r\n`));
    const r = await transaction(gw.port, MAIL, RCPTS, message);
    const match = /^250 2\.0\.0 Ok: quarantined as ([0-9A-Z]{26})$/.exec(text(r.data));
    assert.ok(match, text(r.data));
    return { id: match[1], message };
  }

  it('held through SMTP, listed, shown, then released byte-identical with the original envelope, once', async () => {
    const before = sink.messages.length;
    const { id, message } = await hold('hold me, \x1b[31mplease');
    assert.equal(sink.messages.length, before, 'nothing downstream while held');

    const list = await cli(['list', ...p]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${id} .* held +alice@internal\\.test +bob@outside\\.test \\+1 +SUBJECT_HOLD +hold me, \\\\e\\[31mplease$`, 'm'));
    const json = await cli(['list', '--json', '--symbol', 'SUBJECT_HOLD', '--sender', '@internal.test', '--since', '1h', ...p]);
    const listed = JSON.parse(json.stdout) as { id: string; envelope: { rcptLines: string[] } }[];
    assert.ok(listed.some((m) => m.id === id && m.envelope.rcptLines[0] === RCPTS[0]));
    assert.equal((JSON.parse((await cli(['list', '--json', '--symbol', 'OFFICE_MACRO', ...p])).stdout) as unknown[]).length, 0);

    const show = await cli(['show', id, ...p]);
    assert.equal(show.status, 0, show.stderr);
    assert.ok(show.stdout.includes('SUBJECT_HOLD  score 4'), show.stdout);
    assert.ok(show.stdout.includes('subject: hold me, \\e[31mplease'), show.stdout);
    assert.ok(!show.stdout.includes('\x1b'), 'no raw escape reaches the terminal');
    const raw = spawnSync(process.execPath, [main, 'quarantine', 'show', id, '--raw', ...p]);
    assert.ok(raw.stdout.equals(message), '--raw prints the bytes as received');

    const released = await cli(['release', id, '--operator', 'alice-admin', ...p]);
    assert.equal(released.status, 0, released.stderr);
    assert.match(released.stdout, new RegExp(`${id}: bob@outside\\.test: 250 `));
    assert.match(released.stdout, new RegExp(`${id}: released via 127\\.0\\.0\\.1:${sink.port}: delivered: 250 2\\.0\\.0 Ok: queued as SINK`));
    assert.equal(sink.messages.length, before + 1);
    const got = sink.messages.at(-1)!;
    assert.equal(got.mailLine, MAIL);
    assert.deepEqual(got.rcptLines, RCPTS);
    const eol = got.bytes.indexOf('\r\n') + 2;
    assert.match(got.bytes.subarray(0, eol).toString(), new RegExp(`^X-Mailmoat-Released: id=${id}; by=alice-admin; at=\\S+Z; host=\\S+\\r\\n$`));
    assert.ok(got.bytes.subarray(eol).equals(message), 'the original bytes follow the release header unchanged');
    assert.equal(got.xforward?.get('ADDR'), '127.0.0.1', 'the MTA is told the original client');

    const meta = JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata;
    assert.equal(meta.state, 'released');
    assert.deepEqual(
      meta.history.map((h: { event: string }) => h.event),
      ['quarantined', 'release-started', 'released'],
    );

    const again = await cli(['release', id, ...p]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, new RegExp(`${id} was already released by alice-admin at .* to bob@outside\\.test, carol@outside\\.test; use --force`));
    assert.equal(sink.messages.length, before + 1, 'a second release delivers nothing');

    const audit = readFileSync(path.join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(audit.some((a) => a.action === 'release' && a.id === id && a.operator === 'alice-admin' && a.result === 'released'));
  });

  it('two concurrent releases of the same id deliver once', async () => {
    const { id } = await hold('hold for the race');
    const before = sink.messages.length;
    const results = await Promise.all([cli(['release', id, ...p]), cli(['release', id, ...p])]);
    assert.deepEqual(results.map((r) => r.status).sort(), [0, 1], JSON.stringify(results));
    const loser = results.find((r) => r.status === 1)!;
    assert.match(loser.stderr, /is locked by|was already released/);
    assert.equal(sink.messages.length, before + 1);
  });

  it('--to releases to some of the original recipients; --force delivers again on purpose', async () => {
    const { id } = await hold('hold partly');
    const before = sink.messages.length;
    const r = await cli(['release', id, '--to', 'carol@outside.test', ...p]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(sink.messages.at(-1)!.rcptLines, [RCPTS[1]]);
    const stranger = await cli(['release', id, '--force', '--to', 'mallory@evil.test', ...p]);
    assert.equal(stranger.status, 2);
    assert.match(stranger.stderr, /mallory@evil\.test is not a recipient of/);
    const forced = await cli(['release', id, '--force', '--to', 'bob@outside.test', ...p]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal(sink.messages.length, before + 2);
  });

  it('a release the downstream refuses leaves the item held and says why (exit 1); per-recipient refusals exit 3', async () => {
    const picky = await startSink({ rcpt: (a) => (a.startsWith('bob') ? [550, '5.1.1 No such user bob'] : undefined) });
    const refusing = await startSink({ dot: () => [554, '5.7.1 Not today'] });
    try {
      const { id } = await hold('hold and refuse');
      const r = await cli(['release', id, ...p, '--set', `downstream.port=${refusing.port}`]);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`${id}: NOT released \\(still held\\) via 127\\.0\\.0\\.1:${refusing.port}: the downstream refused the message: 554 5\\.7\\.1 Not today`),
      );
      assert.equal((JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata).state, 'held');

      const partial = await cli(['release', id, ...p, '--set', `quarantine.release.downstream={host: 127.0.0.1, port: ${picky.port}}`]);
      assert.equal(partial.status, 3, partial.stdout + partial.stderr);
      assert.match(partial.stderr, /bob@outside\.test: 550 5\.1\.1 No such user bob/);
      assert.match(partial.stderr, /released in part/);
      assert.deepEqual(picky.messages[0].rcptLines, [RCPTS[1]]);
    } finally {
      await picky.close();
      await refusing.close();
    }
  });

  it('delete keeps the record; release after delete is refused; purge is a dry run unless --yes', async () => {
    const { id } = await hold('hold then delete');
    const d = await cli(['delete', id, '--operator', 'bob-admin', ...p]);
    assert.equal(d.status, 0, d.stderr);
    assert.ok(!existsSync(path.join(dir, `${id}.eml`)));
    assert.equal((JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata).state, 'deleted');
    assert.equal((await cli(['release', id, ...p])).status, 1);
    assert.ok(!(await cli(['list', ...p])).stdout.includes(id), 'deleted items are not listed by default');
    assert.ok((await cli(['list', '--state', 'deleted', ...p])).stdout.includes(id));

    const count = readdirSync(dir).filter((f) => f.endsWith('.json')).length;
    const dry = await cli(['purge', ...p, '--set', 'quarantine.retention=1ms']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`would remove ${id}`));
    assert.match(dry.stdout, /dry run: \d+ messages older than/);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.json')).length, count, 'dry run removes nothing');
    const real = await cli(['purge', '--yes', ...p, '--set', 'quarantine.retention=1ms']);
    assert.equal(real.status, 0, real.stderr);
    assert.equal(readdirSync(dir).filter((f) => /\.(json|eml)$/.test(f)).length, 0);
    assert.ok(readFileSync(path.join(dir, 'audit.log'), 'utf8').includes('"action":"purge"'));
  });

  it('bad input: malformed ids, missing items, corrupt metadata: clear errors, exit 2, nothing changed', async () => {
    for (const bad of ['../../etc/passwd', '01J9Z3K4M5N6P7Q8R9S0T1V2W*', '*']) {
      for (const verb of ['show', 'release', 'delete']) {
        const r = await cli([verb, bad, ...p]);
        assert.equal(r.status, 2, `${verb} ${bad}: ${r.stderr}`);
        assert.match(r.stderr, /invalid quarantine id .*expected a 26-character ULID/);
      }
    }
    const missing = await cli(['release', '01J9Z3K4M5N6P7Q8R9S0T1V2W3', ...p]);
    assert.equal(missing.status, 2);
    assert.ok(missing.stderr.includes(`no quarantined message 01J9Z3K4M5N6P7Q8R9S0T1V2W3 in ${dir}`), missing.stderr);

    const { id } = await hold('hold and corrupt');
    const file = path.join(dir, `${id}.json`);
    writeFileSync(file, '{"id": "' + id + '", "state": ');
    const before = sink.messages.length;
    for (const verb of ['show', 'release', 'delete']) {
      const r = await cli([verb, id, ...p]);
      assert.equal(r.status, 2, verb);
      assert.ok(r.stderr.includes(`${file}: corrupt metadata`), r.stderr);
    }
    assert.equal(readFileSync(file, 'utf8'), '{"id": "' + id + '", "state": ');
    assert.ok(existsSync(path.join(dir, `${id}.eml`)));
    assert.equal(sink.messages.length, before);
    const list = await cli(['list', ...p]);
    assert.equal(list.status, 2);
    assert.ok(list.stderr.includes(file));
    assert.equal((await cli(['list', '--state', 'bogus', ...p])).status, 2);
    assert.equal((await cli(['release', ...p])).status, 2, 'no id, no --all');
    assert.equal((await cli(['list', '--bogus-option', ...p])).status, 2);
  });

  it('bulk release --all needs --yes when not interactive', async () => {
    const { id } = await hold('hold in bulk', 'bulk');
    const refused = await cli(['release', '--all', '--symbol', 'SUBJECT_HOLD', ...p]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /messages match; nothing done\. Add --yes/);
    const before = sink.messages.length;
    const r = await cli(['release', '--all', '--symbol', 'SUBJECT_HOLD', '--yes', ...p]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(`${id}: released`));
    assert.ok(sink.messages.length > before);
    assert.equal((await cli(['release', '--all', '--yes', ...p])).status, 0, 'nothing left: fine');
  });

  it('a store the gateway cannot write answers 451 4.3.0 and leaves nothing half-written', async function () {
    const root = mkdtempSync(path.join(tmpdir(), 'mailmoat-qro-'));
    const blocked = path.join(root, 'q');
    // as root a read-only mode does not stop writes: a file where the directory should be does
    writeFileSync(blocked, 'not a directory');
    const ro = path.join(root, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    const dirs = process.getuid?.() === 0 ? [blocked] : [blocked, ro];
    for (const target of dirs) {
      const g = await startGateway(sink.port, [RULE, `quarantine.dir=${target}`]);
      try {
        const before = sink.messages.length;
        const r = await transaction(g.port, MAIL, RCPTS, messages.simpleMessage('hold this'));
        assert.match(text(r.data), /^451 4\.3\.0 /);
        assert.equal(sink.messages.length, before);
        if (target === ro) assert.deepEqual(readdirSync(ro), []);
      } finally {
        await g.close();
      }
    }
  });
});
