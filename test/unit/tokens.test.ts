// Recipient link tokens: a token works for its item and recipient until it expires, and for nothing
// else: not another item, not another recipient, not after its expiry, not with one character
// changed anywhere, not under another key. The key file is refused with its name when unusable.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ulid } from 'ulid';
import { createRecipientToken, initTokenKey, readTokenKey, TokenKeyError, verifyRecipientToken } from '../../src/console/tokens.js';

const KEY = randomBytes(32);
const NOW = Date.parse('2025-03-01T09:00:00Z');
const HOUR = 3_600_000;

describe('recipient tokens', () => {
  const id = ulid(NOW);
  const claim = { id, recipient: 'Sato.Hanako@example.jp', expiresAt: NOW + 7 * 24 * HOUR };
  const token = createRecipientToken(KEY, claim);

  it('verifies for its item and recipient, and is URL-safe', () => {
    assert.match(token, /^[A-Za-z0-9._-]+$/);
    assert.equal(encodeURIComponent(token), token);
    assert.deepEqual(verifyRecipientToken(KEY, token, NOW), { status: 'ok', ...claim });
  });

  it("names only its own item and recipient: another recipient's token does not open this item", () => {
    const other = createRecipientToken(KEY, { ...claim, recipient: 'suzuki@example.jp' });
    const check = verifyRecipientToken(KEY, other, NOW);
    assert.equal(check.status, 'ok');
    assert.ok(check.status === 'ok' && check.recipient === 'suzuki@example.jp' && check.id === id);
    // splicing another token's recipient into this one breaks the signature
    const [v, i, e, , m] = token.split('.');
    const spliced = [v, i, e, other.split('.')[3], m].join('.');
    assert.equal(verifyRecipientToken(KEY, spliced, NOW).status, 'bad-signature');
    const otherItem = createRecipientToken(KEY, { ...claim, id: ulid(NOW + 1) });
    assert.equal(verifyRecipientToken(KEY, [v, otherItem.split('.')[1], e, token.split('.')[3], m].join('.'), NOW).status, 'bad-signature');
  });

  it('is refused from its expiry on, and says so', () => {
    assert.equal(verifyRecipientToken(KEY, token, claim.expiresAt - 1000).status, 'ok');
    const at = verifyRecipientToken(KEY, token, claim.expiresAt);
    assert.equal(at.status, 'expired');
    assert.equal(verifyRecipientToken(KEY, token, claim.expiresAt + 365 * 24 * HOUR).status, 'expired');
    // moving the expiry forward is an alteration
    const [v, i, , r, m] = token.split('.');
    const later = (Math.ceil(claim.expiresAt / 1000) + 86_400).toString(36);
    assert.equal(verifyRecipientToken(KEY, [v, i, later, r, m].join('.'), claim.expiresAt).status, 'bad-signature');
  });

  it('is refused with any one character changed, dropped or added, in every field', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    let tried = 0;
    for (let pos = 0; pos < token.length; pos++) {
      for (const ch of alphabet) {
        if (ch === token[pos]) continue;
        const altered = token.slice(0, pos) + ch + token.slice(pos + 1);
        const check = verifyRecipientToken(KEY, altered, NOW);
        assert.notEqual(check.status, 'ok', `changing position ${pos} to ${ch} still verifies: ${altered}`);
        assert.notEqual(check.status, 'expired', `changing position ${pos} to ${ch} verifies (expired)`);
        tried++;
      }
      const dropped = token.slice(0, pos) + token.slice(pos + 1);
      assert.ok(['malformed', 'bad-signature'].includes(verifyRecipientToken(KEY, dropped, NOW).status), `dropping position ${pos}`);
      const added = token.slice(0, pos) + 'A' + token.slice(pos);
      assert.ok(['malformed', 'bad-signature'].includes(verifyRecipientToken(KEY, added, NOW).status), `adding at position ${pos}`);
    }
    assert.ok(tried > 100 * 60);
    for (const bad of [
      '',
      '.',
      token + '.',
      token + 'A',
      token.toUpperCase(),
      `2${token.slice(1)}`,
      token.split('.').slice(0, 4).join('.'),
      'x'.repeat(5000),
    ]) {
      assert.ok(['malformed', 'bad-signature'].includes(verifyRecipientToken(KEY, bad, NOW).status), bad.slice(0, 40));
    }
  });

  it('a change in the last base64url character that decodes to the same bytes is refused too (one spelling per token)', () => {
    const macText = token.split('.')[4];
    const last = macText.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const same = [...alphabet].filter((c) => c !== last && Buffer.from(macText.slice(0, -1) + c, 'base64url').equals(Buffer.from(macText, 'base64url')));
    assert.ok(same.length > 0, 'the MAC field has spare bits');
    for (const c of same) assert.equal(verifyRecipientToken(KEY, token.slice(0, -1) + c, NOW).status, 'malformed');
  });

  it('a token made under another key fails as bad-signature', () => {
    assert.equal(verifyRecipientToken(randomBytes(32), token, NOW).status, 'bad-signature');
    assert.equal(verifyRecipientToken(KEY, createRecipientToken(randomBytes(32), claim), NOW).status, 'bad-signature');
  });

  it('carries non-ASCII recipients exactly', () => {
    const utf8 = { ...claim, recipient: '佐藤@例え.jp' };
    assert.deepEqual(verifyRecipientToken(KEY, createRecipientToken(KEY, utf8), NOW), { status: 'ok', ...utf8 });
  });
});

describe('the link key file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-key-'));

  it('--init-key makes a private key file that reads back, and never overwrites one', async () => {
    const file = path.join(dir, 'link.key');
    await initTokenKey(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const key = await readTokenKey(file);
    assert.ok(key.length >= 32);
    const before = readFileSync(file);
    await assert.rejects(initTokenKey(file), (err: Error) => err instanceof TokenKeyError && err.message.includes(file) && /already exists/.test(err.message));
    assert.deepEqual(readFileSync(file), before);
  });

  it('an openssl-made key (base64 text with a newline) is accepted', async () => {
    const file = path.join(dir, 'openssl.key');
    writeFileSync(file, randomBytes(48).toString('base64') + '\n', { mode: 0o600 });
    assert.equal((await readTokenKey(file)).length, 64);
  });

  it('is refused, naming the file, when missing, unset, too short or open to every user', async () => {
    const missing = path.join(dir, 'none.key');
    await assert.rejects(readTokenKey(missing), (err: Error) => err instanceof TokenKeyError && err.message.includes(missing) && /ENOENT/.test(err.message));
    await assert.rejects(readTokenKey(null), /quarantine\.digest\.keyFile is not set/);
    const short = path.join(dir, 'short.key');
    writeFileSync(short, 'secret\n', { mode: 0o600 });
    await assert.rejects(readTokenKey(short), (err: Error) => err.message.includes(short) && /holds 6 bytes; at least 32/.test(err.message));
    const open = path.join(dir, 'open.key');
    writeFileSync(open, randomBytes(48).toString('base64'));
    chmodSync(open, 0o644);
    await assert.rejects(readTokenKey(open), (err: Error) => err.message.includes(open) && /chmod 600/.test(err.message));
    await assert.rejects(readTokenKey(dir), (err: Error) => err.message.includes(dir) && /not a regular file/.test(err.message));
  });
});
