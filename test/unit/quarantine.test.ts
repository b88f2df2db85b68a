// The quarantine store without a network: items listed from the files, ids checked, metadata parsed
// (never evaluated), state transitions under the lock, the lock across processes, retention/purge,
// and escaping of what an attacker wrote.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ulid } from 'ulid';
import { escapeControl } from '../../src/quarantine/escape.js';
import { formatItem, formatTable, matches, parseSince } from '../../src/quarantine/query.js';
import { deleteItem, executePurge, planPurge, release } from '../../src/quarantine/release.js';
import { checkId, parseMetadata, QUARANTINE_ID, QuarantineError, QuarantineStore, ulidTime, type QuarantineMetadata } from '../../src/quarantine/store.js';
import { policySchema } from '../../src/policy/schema.js';
import { fileURLToPath } from 'node:url';

const DAY = 86_400_000;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function tempStore(): QuarantineStore {
  return new QuarantineStore(path.join(mkdtempSync(path.join(tmpdir(), 'mailmoat-qu-')), 'q'));
}

async function putItem(
  store: QuarantineStore,
  options: { id?: string; subject?: string; from?: string; rcpt?: string[]; symbol?: string } = {},
): Promise<QuarantineMetadata> {
  const id = options.id ?? ulid();
  const message = Buffer.from(`From: a@b.test\r\nSubject: ${options.subject ?? 'hold me'}\r\n\r\nbody\r\n`);
  const rcpt = options.rcpt ?? ['bob@outside.test'];
  return store.put(Readable.from([message]), {
    id,
    receivedAt: new Date(ulidTime(id)).toISOString(),
    client: { address: '192.0.2.7', helo: 'pc17' },
    envelope: {
      mailFrom: options.from ?? 'alice@internal.test',
      mailLine: `MAIL FROM:<${options.from ?? 'alice@internal.test'}> SIZE=100`,
      rcptTo: rcpt,
      rcptLines: rcpt.map((r) => `RCPT TO:<${r}> NOTIFY=FAILURE`),
    },
    size: message.length,
    findings: [
      { symbol: options.symbol ?? 'OFFICE_MACRO', score: 10, part: 'invoice.zip > invoice.docm > word/vbaProject.bin', detail: 'Document_Open calls Shell' },
    ],
    verdict: { action: 'quarantine', score: 10, reason: 'OFFICE_MACRO' },
    policyVersion: 'abcdef123456',
  });
}

async function rejects(promise: Promise<unknown>, kind: QuarantineError['kind'], pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof QuarantineError, String(err));
    assert.equal(err.kind, kind, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('quarantine store', function () {
  it('lists items from the files alone, oldest first; other files are ignored', async () => {
    const store = tempStore();
    const older = await putItem(store, { id: ulid(Date.now() - 5 * DAY) });
    const newer = await putItem(store, { subject: 'second' });
    writeFileSync(path.join(store.dir, 'README'), 'not an item');
    writeFileSync(path.join(store.dir, 'notes.json'), '{}');
    const { items, problems } = await store.list();
    assert.deepEqual(
      items.map((m) => m.id),
      [older.id, newer.id],
    );
    assert.deepEqual(problems, []);
    assert.equal(items[1].headers?.subject, 'second');
    assert.equal(items[0].state, 'held');
    assert.deepEqual(await store.ids(Date.now() - DAY), [newer.id], 'since: older ids skipped by name');
    // a second store object over the same directory (another node) sees the same
    assert.equal((await new QuarantineStore(store.dir).list()).items.length, 2);
  });

  it('reports corrupt metadata naming the file, and lists the rest', async () => {
    const store = tempStore();
    const good = await putItem(store);
    const bad = ulid();
    writeFileSync(path.join(store.dir, `${bad}.json`), '{"id": "' + bad + '", "state": "held"');
    const { items, problems } = await store.list();
    assert.deepEqual(
      items.map((m) => m.id),
      [good.id],
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0].kind, 'corrupt');
    assert.ok(problems[0].message.includes(path.join(store.dir, `${bad}.json`)), problems[0].message);
  });

  it('metadata is parsed, never evaluated: wrong shapes, ids and prototype keys are refused or inert', () => {
    const meta = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as unknown;
    assert.throws(() => parseMetadata(JSON.stringify(meta), 'x.json'), /x\.json: corrupt metadata/);
    const id = ulid();
    const item = {
      id,
      receivedAt: 'now',
      client: { address: '1', helo: 'h' },
      envelope: { mailFrom: '', mailLine: 'MAIL FROM:<>', rcptTo: [], rcptLines: [] },
      size: 1,
      sha256: 'a'.repeat(64),
      findings: [],
      verdict: { action: 'quarantine', score: 0, reason: '' },
      policyVersion: 'v',
      state: 'held',
      history: [],
    };
    assert.throws(() => parseMetadata(JSON.stringify(item), 'y.json', ulid()), /holds id/);
    assert.throws(() => parseMetadata(JSON.stringify({ ...item, state: 'eval' }), 'y.json'), /state/);
    const parsed = parseMetadata(JSON.stringify(item).replace('{', '{"__proto__": {"polluted": true}, "toString": "() => 1",'), 'y.json');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((parsed as unknown as Record<string, unknown>).polluted, undefined);
  });

  it('accepts only ULIDs as ids: no path traversal, no globs, no other names', async () => {
    const store = tempStore();
    for (const bad of [
      '../../etc/passwd',
      '*',
      '01J9Z3K4M5N6P7Q8R9S0T1V2W*',
      '01j9z3k4m5n6p7q8r9s0t1v2w3',
      '01J9Z3K4M5N6P7Q8R9S0T1V2W',
      '01J9Z3K4M5N6P7Q8R9S0T1V2WIL',
      '01J9Z3K4M5N6P7Q8R9S0T1V2W3/..',
      '',
      'audit',
    ]) {
      assert.throws(
        () => checkId(bad),
        (err: unknown) => err instanceof QuarantineError && err.kind === 'invalid-id',
        bad,
      );
      await rejects(store.get(bad), 'invalid-id');
      await rejects(deleteItem(store, bad, { operator: 't' }), 'invalid-id');
    }
    assert.match(ulid(), QUARANTINE_ID);
    await rejects(store.get(ulid()), 'not-found', /does not exist/);
  });

  it('delete: held → deleted, message removed, metadata kept with history; a second delete is refused', async () => {
    const store = tempStore();
    const item = await putItem(store);
    await deleteItem(store, item.id, { operator: 'carol' });
    assert.ok(!existsSync(store.emlFile(item.id)));
    const meta = await store.get(item.id);
    assert.equal(meta.state, 'deleted');
    assert.deepEqual(
      meta.history.map((h) => [h.event, h.by]),
      [
        ['quarantined', 'gateway'],
        ['deleted', 'carol'],
      ],
    );
    await rejects(deleteItem(store, item.id, { operator: 'carol' }), 'state', /already deleted/);
    const policy = policySchema.parse({ downstream: { host: '127.0.0.1', port: 9 } });
    await rejects(release(store, item.id, policy, { operator: 'carol' }), 'state', /was deleted by carol/);
    const audit = readFileSync(store.auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      audit.map((a) => [a.action, a.id, a.operator, a.result]),
      [['delete', item.id, 'carol', 'deleted']],
    );
    assert.ok(!readdirSync(store.dir).some((f) => f.endsWith('.tmp') || f.endsWith('.lock')), readdirSync(store.dir).join(' '));
  });

  it('a release whose outcome was never recorded (a crash after sending) is refused until --force', async () => {
    const store = tempStore();
    const item = await putItem(store);
    const meta = await store.get(item.id);
    meta.pendingRelease = { at: new Date().toISOString(), by: 'dave', host: 'node2', pid: 1, recipients: meta.envelope.rcptTo };
    await store.update(meta);
    const policy = policySchema.parse({ downstream: { host: '127.0.0.1', port: 9 } });
    await rejects(release(store, item.id, policy, { operator: 'erin' }), 'state', /did not record its outcome.*--force/);
    await rejects(deleteItem(store, item.id, { operator: 'erin' }), 'state', /outcome is unknown/);
    // nothing changed
    assert.deepEqual(await store.get(item.id), meta);
  });

  it('a failed release (downstream unreachable) leaves the item held and says why', async () => {
    const store = tempStore();
    const item = await putItem(store);
    const policy = policySchema.parse({ downstream: { host: '127.0.0.1', port: 9, starttls: 'off' }, timeouts: { downstreamConnect: '2s' } });
    const result = await release(store, item.id, policy, { operator: 'frank' });
    assert.equal(result.status, 'failed');
    assert.match(result.reason, /127\.0\.0\.1:9/);
    const meta = await store.get(item.id);
    assert.equal(meta.state, 'held');
    assert.equal(meta.pendingRelease, undefined);
    assert.deepEqual(
      meta.history.map((h) => h.event),
      ['quarantined', 'release-started', 'release-failed'],
    );
  });

  it('the lock is exclusive; a lock left by a dead process on this host is broken', async () => {
    const store = tempStore();
    const item = await putItem(store);
    const held = await store.lock(item.id, 'one');
    await rejects(store.lock(item.id, 'two'), 'locked', new RegExp(`locked by one \\(pid ${process.pid}`));
    await store.unlock(held);
    // a dead pid on this host
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    const os = await import('node:os');
    writeFileSync(store.lockFile(item.id), JSON.stringify({ host: os.hostname(), pid: dead.pid, by: 'ghost', at: new Date().toISOString(), token: 'x' }));
    const again = await store.lock(item.id, 'three');
    await store.unlock(again);
    assert.ok(!existsSync(store.lockFile(item.id)));
  });

  it('two processes locking the same item at once: exactly one gets it', async () => {
    const store = tempStore();
    const item = await putItem(store);
    const storeModule = path.join(repoRoot, 'dist', 'src', 'quarantine', 'store.js');
    const script = `
      const { QuarantineStore } = await import(${JSON.stringify(storeModule)});
      const store = new QuarantineStore(${JSON.stringify(store.dir)});
      await new Promise((r) => setTimeout(r, Number(process.argv[1]) - Date.now()));
      try { await store.lock(${JSON.stringify(item.id)}, 'p' + process.pid); console.log('got'); await new Promise((r) => setTimeout(r, 300)); }
      catch (err) { console.log(err.kind); }`;
    const start = String(Date.now() + 400);
    const outputs = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<string>((resolve) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script, start], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.on('exit', () => resolve(out.trim()));
          }),
      ),
    );
    assert.deepEqual(outputs.sort(), ['got', 'locked']);
  });

  it('purge: past the retention by id time; dry run changes nothing; stray temp files go too', async () => {
    const store = tempStore();
    const old = await putItem(store, { id: ulid(Date.now() - 40 * DAY) });
    const oldDeleted = await putItem(store, { id: ulid(Date.now() - 31 * DAY) });
    await deleteItem(store, oldDeleted.id, { operator: 'x' });
    const fresh = await putItem(store, { id: ulid(Date.now() - 29 * DAY) });
    const stray = path.join(store.dir, `.${ulid()}.eml.tmp`);
    writeFileSync(stray, 'half');
    const { utimesSync } = await import('node:fs');
    utimesSync(stray, new Date(Date.now() - 2 * DAY), new Date(Date.now() - 2 * DAY));
    const freshStray = path.join(store.dir, `.${ulid()}.eml.tmp`);
    writeFileSync(freshStray, 'being written by another node');

    const plan = await planPurge(store, 30 * DAY);
    assert.deepEqual(
      plan.expired.map((e) => [e.id, e.state]),
      [
        [old.id, 'held'],
        [oldDeleted.id, 'deleted'],
      ],
    );
    assert.deepEqual(plan.stray, [stray]);
    assert.ok(existsSync(store.jsonFile(old.id)), 'planning removes nothing');
    assert.deepEqual((await planPurge(store, 0)).expired, [], 'retention 0 keeps everything');

    const { removed, skipped } = await executePurge(store, plan, 'cron');
    assert.deepEqual(removed, [old.id, oldDeleted.id]);
    assert.deepEqual(skipped, []);
    assert.deepEqual(await store.ids(), [fresh.id]);
    assert.ok(!existsSync(stray) && existsSync(freshStray));
  });

  it('purge skips an item whose release is in progress', async () => {
    const store = tempStore();
    const old = await putItem(store, { id: ulid(Date.now() - 40 * DAY) });
    const lock = await store.lock(old.id, 'releaser');
    const result = await executePurge(store, await planPurge(store, 30 * DAY), 'cron');
    assert.deepEqual(result.removed, []);
    assert.match(result.skipped[0].reason, /locked by releaser/);
    await store.unlock(lock);
  });
});

describe('quarantine display', function () {
  it('escapes control characters, bidi overrides and backslashes', () => {
    assert.equal(escapeControl('plain text, ünïcödé'), 'plain text, ünïcödé');
    assert.equal(escapeControl('a\x1b[31mred\r\nX-Fake: 1\x00\x7f\x9b'), 'a\\e[31mred\\r\\nX-Fake: 1\\x00\\x7f\\x9b');
    assert.equal(escapeControl('inv\u202egpj.exe'), 'inv\\u{202e}gpj.exe');
    assert.equal(escapeControl('C:\\x1b'), 'C:\\\\x1b', 'a literal backslash cannot forge an escape');
  });

  it('list and show print header values and envelope fields escaped', () => {
    const meta: QuarantineMetadata = {
      id: ulid(),
      receivedAt: new Date().toISOString(),
      client: { address: '192.0.2.1', helo: 'evil\x1b]0;title\x07' },
      envelope: { mailFrom: 'x\x1b@y.test', mailLine: 'MAIL FROM:<x\x1b@y.test>', rcptTo: ['b@c.test'], rcptLines: ['RCPT TO:<b@c.test>'] },
      size: 1,
      sha256: 'a'.repeat(64),
      headers: { subject: 'Invoice\x1b[2J\rPAID' },
      findings: [{ symbol: 'OFFICE_MACRO', score: 10, part: 'a.zip > b\x1b.docm', detail: 'calls Shell' }],
      verdict: { action: 'quarantine', score: 10, reason: 'OFFICE_MACRO' },
      policyVersion: 'v1',
      state: 'held',
      history: [],
    };
    const table = formatTable([meta]);
    const shown = formatItem(meta, [{ name: 'subject', value: 'Invoice\x1b[2J\rPAID' }]);
    for (const out of [table, shown]) {
      assert.ok(!/[\x00-\x09\x0b-\x1f\x7f]/.test(out), JSON.stringify(out));
      assert.ok(out.includes('Invoice\\e[2J\\rPAID'), out);
    }
    assert.ok(shown.includes('HELO evil\\e]0;title\\x07'));
    assert.ok(shown.includes('part:   a.zip > b\\e.docm'));
  });

  it('filters: since, symbol, sender/recipient (@domain or part), state', () => {
    const now = Date.now();
    assert.equal(parseSince('2d', now), now - 2 * DAY);
    assert.equal(parseSince('2024-05-01'), Date.parse('2024-05-01'));
    assert.equal(parseSince('yesterday'), undefined);
    const meta = {
      receivedAt: new Date(now - DAY).toISOString(),
      state: 'held',
      findings: [
        { symbol: 'OFFICE_MACRO', score: 1 },
        { symbol: 'X', score: 1, excepted: 'ok' },
      ],
      envelope: { mailFrom: 'Alice@Example.com', rcptTo: ['bob@corp.test'] },
    } as unknown as QuarantineMetadata;
    assert.ok(matches(meta, { since: now - 2 * DAY, symbols: ['office_macro'], sender: '@example.com', recipient: 'bob', states: ['held'] }));
    assert.ok(!matches(meta, { since: now - DAY / 2 }));
    assert.ok(!matches(meta, { symbols: ['X'] }), 'an excepted finding does not count');
    assert.ok(!matches(meta, { sender: '@corp.test' }));
    assert.ok(!matches(meta, { states: ['released'] }));
  });
});
