// One budget per message (issue 11 §3): the message's leaves share office.maxPasswordAttempts,
// office.timeout and the byte/entry limits, whichever worker scans them; each key derivation is
// made once per message; the pool serves the message that has had least worker time first.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseMessageParts } from '../../../src/inspect/attachments.js';
import { KeyCache } from '../../../src/inspect/office/key-cache.js';
import { Turns } from '../../../src/inspect/office/turns.js';
import { DEFAULT_OFFICE_LIMITS, newBudget } from '../../../src/inspect/office/types.js';
import { loadPolicy } from '../../../src/policy/load.js';
import type { Finding } from '../../../src/inspect/finding.js';
import { defaultPolicyFile } from '../../helpers/gateway.js';
import { buildDocx, buildVbaCfb } from '../../fixtures/office/container-builders.js';
import { buildAgileEncrypted } from '../../fixtures/office/ole-builders.js';
import { emailWith } from '../../fixtures/office/emails.js';

const policyWith = (...overrides: string[]) => loadPolicy(defaultPolicyFile, overrides).policy;

async function lockedDocm(password: string, spinCount = 100_000): Promise<Buffer> {
  return buildAgileEncrypted(await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() }), password, spinCount);
}

/** The findings of each attachment, by its name. */
function byPart(findings: Finding[]): Map<string, Finding[]> {
  const parts = new Map<string, Finding[]>();
  for (const f of findings) {
    const top = (f.part ?? '').split(' > ')[0];
    parts.set(top, [...(parts.get(top) ?? []), f]);
  }
  return parts;
}

describe('scan budget: one per message', function () {
  this.timeout(60_000);

  it("password attempts are the message's: documents past the budget are held as unscannable, with the reason", async () => {
    // four documents no password opens, each with its own salt: the announced password and the two
    // well-known ones are 3 attempts each; the budget of 7 covers two documents and a third's first try
    const docs = await Promise.all(Array.from({ length: 4 }, () => lockedDocm('not-guessable', 10_000)));
    const eml = await emailWith(
      docs.map((content, i) => ({ filename: `invoice${i}.docx`, content })),
      { text: 'The documents are protected.\r\nPassword: 2024\r\n' },
    );
    const { findings } = await parseMessageParts(eml, policyWith('office.maxPasswordAttempts=7'));
    const parts = byPart(findings);
    const why = (name: string) => parts.get(name)?.find((f) => f.symbol === 'OFFICE_ENCRYPTED_UNSCANNABLE')?.detail ?? JSON.stringify(parts.get(name));
    assert.match(why('invoice0.docx'), /password unknown/);
    assert.match(why('invoice1.docx'), /password unknown/);
    assert.match(why('invoice2.docx'), /password attempts exhausted/);
    assert.match(why('invoice3.docx'), /password attempts exhausted/);
  });

  it('the announced password is tried first: five documents it opens cost five attempts', async () => {
    const docs = await Promise.all(Array.from({ length: 5 }, () => lockedDocm('2024', 10_000)));
    const eml = await emailWith(
      docs.map((content, i) => ({ filename: `invoice${i}.docx`, content })),
      { text: 'Password: 2024\r\n' },
    );
    const { findings } = await parseMessageParts(eml, policyWith('office.maxPasswordAttempts=5'));
    const parts = byPart(findings);
    for (let i = 0; i < 5; i++)
      assert.ok(
        parts.get(`invoice${i}.docx`)?.some((f) => f.symbol === 'OFFICE_MACRO'),
        JSON.stringify(parts.get(`invoice${i}.docx`)),
      );
  });

  it('each key derivation is made once per message: ten copies of one document, a byte apart, open with three attempts', async () => {
    const doc = await lockedDocm('2024');
    const eml = await emailWith(
      Array.from({ length: 10 }, (_, i) => ({ filename: `copy${i}.docx`, content: Buffer.concat([doc, Buffer.from([i])]) })),
      { text: 'Password: 2024\r\n' },
    );
    const { findings } = await parseMessageParts(eml, policyWith('office.maxPasswordAttempts=3'));
    const parts = byPart(findings);
    assert.equal(parts.size, 10, JSON.stringify([...parts.keys()]));
    for (const [name, found] of parts) {
      assert.ok(
        found.some((f) => f.symbol === 'OFFICE_MACRO'),
        `${name}: ${found.map((f) => `${f.symbol} ${f.detail ?? ''}`).join('; ')}`,
      );
      assert.ok(!found.some((f) => f.symbol === 'OFFICE_ENCRYPTED_UNSCANNABLE'), name);
    }
  });

  it("the scan time is the message's: once it is spent, the remaining attachments are held unscanned, and say so", async () => {
    // three documents no password opens, 20 candidate passwords: ~20 s of derivations per document
    const docs = await Promise.all(Array.from({ length: 3 }, () => lockedDocm('not-guessable', 300_000)));
    const passwords = Array.from({ length: 20 }, (_, i) => `Password: guess${i}`).join('\r\n');
    const eml = await emailWith(
      docs.map((content, i) => ({ filename: `locked${i}.docx`, content })),
      { text: `${passwords}\r\n` },
    );
    const { findings } = await parseMessageParts(eml, policyWith('office.timeout=1s', 'office.maxPasswordAttempts=1000'));
    const parts = byPart(findings);
    const notScanned = [...parts].filter(([, found]) =>
      found.some((f) => f.symbol === 'ARCHIVE_LIMIT' && /scan time of 1000 ms is spent; not scanned/.test(f.detail ?? '')),
    );
    assert.ok(notScanned.length >= 1, JSON.stringify(findings));
    // nothing comes out clean: every document is held by one finding or another
    for (const name of ['locked0.docx', 'locked1.docx', 'locked2.docx']) {
      assert.ok(
        parts.get(name)?.some((f) => ['ARCHIVE_LIMIT', 'OFFICE_ENCRYPTED_UNSCANNABLE'].includes(f.symbol)),
        `${name}: ${JSON.stringify(parts.get(name))}`,
      );
    }
  });

  it('the same message scanned twice gets the same findings (turns cut short change nothing)', async () => {
    const docs = [await lockedDocm('2024'), await lockedDocm('2025'), randomBytes(2000)];
    const eml = await emailWith(
      docs.map((content, i) => ({ filename: `f${i}.docx`, content })),
      { text: 'Password: 2024\r\nPW: 2025\r\nパスワード: 7777\r\n' },
    );
    const policy = policyWith();
    const first = (await parseMessageParts(eml, policy)).findings;
    const second = (await parseMessageParts(eml, policy)).findings;
    assert.deepEqual(second, first);
    assert.equal(first.filter((f) => f.symbol === 'OFFICE_MACRO').length, 2, JSON.stringify(first));
  });
});

describe('key cache', () => {
  const id = { alg: 'sha512', spinCount: 10, salt: Buffer.alloc(16, 1), password: 'pw' };

  it('computes a derivation once and charges one attempt; a cached one is free', () => {
    const budget = newBudget(DEFAULT_OFFICE_LIMITS);
    let computed = 0;
    const compute = () => (computed++, Buffer.from('key'));
    assert.deepEqual(budget.keys.derive(id, budget, compute), Buffer.from('key'));
    assert.deepEqual(budget.keys.derive(id, budget, compute), Buffer.from('key'));
    assert.equal(computed, 1);
    assert.equal(budget.passwordAttemptsLeft, DEFAULT_OFFICE_LIMITS.maxPasswordAttempts - 1);
    // another salt or password is another derivation
    budget.keys.derive({ ...id, salt: Buffer.alloc(16, 2) }, budget, compute);
    budget.keys.derive({ ...id, password: 'pw2' }, budget, compute);
    assert.equal(computed, 3);
  });

  it('refuses a new derivation when no attempt is left, but still gives known ones', () => {
    const budget = {
      ...newBudget(DEFAULT_OFFICE_LIMITS),
      passwordAttemptsLeft: 0,
      keys: new KeyCache([['sha512:10:' + id.salt.toString('base64') + ':pw', Buffer.from('k')]]),
    };
    assert.deepEqual(
      budget.keys.derive(id, budget, () => assert.fail('computed')),
      Buffer.from('k'),
    );
    assert.equal(
      budget.keys.derive({ ...id, password: 'other' }, budget, () => assert.fail('computed')),
      'exhausted',
    );
  });

  it('past the end of its turn, and after one derivation, leaves the next one for the next turn', () => {
    const keys = new KeyCache([], Date.now() - 1);
    const budget = { ...newBudget(DEFAULT_OFFICE_LIMITS), keys };
    assert.ok(Buffer.isBuffer(keys.derive(id, budget, () => Buffer.from('a'))), 'the first derivation of a turn is always made');
    assert.equal(
      keys.derive({ ...id, password: 'b' }, budget, () => Buffer.from('b')),
      'deferred',
    );
    assert.equal(keys.deferred, true);
    assert.equal(budget.passwordAttemptsLeft, DEFAULT_OFFICE_LIMITS.maxPasswordAttempts - 1);
    assert.deepEqual([...keys.derived.keys()].length, 1);
  });
});

describe('turns on the scan workers', () => {
  it('the message that has had the least worker time goes first; equals go first come, first served', async () => {
    const turns = new Turns(1);
    await turns.acquire(0);
    const order: string[] = [];
    const waits = [
      turns.acquire(5000).then(() => order.push('heavy 5000')),
      turns.acquire(300).then(() => order.push('heavy 300')),
      turns.acquire(0).then(() => order.push('ordinary A')),
      turns.acquire(0).then(() => order.push('ordinary B')),
    ];
    for (let i = 0; i < 4; i++) {
      turns.release();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waits);
    assert.deepEqual(order, ['ordinary A', 'ordinary B', 'heavy 300', 'heavy 5000']);
  });

  it('a waiter whose client went away leaves the line and takes no worker', async () => {
    const turns = new Turns(1);
    await turns.acquire(0);
    const gone = new AbortController();
    const abandoned = turns.acquire(0, gone.signal);
    const next = turns.acquire(10);
    gone.abort(new Error('client gone'));
    await assert.rejects(abandoned, /client gone/);
    assert.equal(turns.queued, 1);
    turns.release();
    await next; // the worker went to the next waiter
    turns.release();
    await turns.acquire(0); // and came back free
  });
});
