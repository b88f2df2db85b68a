// The password finder (issue 12 §6): every phrasing of the family gives its password first; the
// near-neighbours give none, or not the wrong one; the list is ranked and capped, and the cap is
// what holds the message's attempt budget when a text is stuffed with decoys.
import assert from 'node:assert/strict';
import { parseMessageParts } from '../../../src/inspect/attachments.js';
import { findPasswordCandidates, findPasswords, MAX_PASSWORDS } from '../../../src/inspect/office/passwords.js';
import { KEYWORD, KEYWORD_ASCII } from '../../../src/inspect/office/password-words.js';
import { loadPolicy } from '../../../src/policy/load.js';
import { buildDocx, buildVbaCfb, buildZip } from '../../fixtures/office/container-builders.js';
import { emailWith } from '../../fixtures/office/emails.js';
import { fullWidth, NEAR_NEIGHBOURS, NO_PASSWORD, phrasings } from '../../fixtures/passwords/phrasings.js';
import { defaultPolicyFile } from '../../helpers/gateway.js';

describe('password finder: the phrasing family', () => {
  const family = phrasings();

  it(`builds a family of ${family.length} phrasings over 10 languages, 8 separators, 4 placements and full-width forms`, () => {
    assert.ok(family.length > 600, String(family.length));
    assert.ok(family.some((p) => /[０-９]/.test(p.text)));
    assert.ok(family.some((p) => p.text.startsWith('<html>')));
  });

  it('every phrasing gives its password as the first candidate', () => {
    const misses = family.filter((p) => findPasswords(p.text)[0] !== p.password).map((p) => `${p.name}: ${JSON.stringify(findPasswords(p.text))}`);
    assert.deepEqual(misses, []);
  });

  for (const example of [
    { text: 'The password for the attachment is 2021', password: '2021' },
    { text: '解凍パスワードは以下の通りです。\n\n  Kx7#p2mQ\n\nよろしくお願いします。', password: 'Kx7#p2mQ' },
    { text: '添付ファイルのパスワード: 7531', password: '7531' },
    { text: '添付ファイルのパスワード：７５３１', password: '7531' },
    { text: fullWidth('Password: Ab12'), password: 'Ab12' },
  ]) {
    it(`the issue's example ${JSON.stringify(example.text)} gives ${example.password}`, () => {
      assert.deepEqual(findPasswords(example.text).slice(0, 1), [example.password]);
    });
  }
});

describe('password finder: near-neighbours', () => {
  for (const text of NO_PASSWORD) {
    it(`no candidate in ${JSON.stringify(text.slice(0, 60))}`, () => {
      assert.deepEqual(findPasswords(text), []);
    });
  }

  for (const n of NEAR_NEIGHBOURS) {
    it(`${n.name}: the password first, never the decoy`, () => {
      const got = findPasswords(n.text);
      assert.equal(got[0], n.password, JSON.stringify(got));
      for (const wrong of n.notCandidates) assert.ok(!got.includes(wrong), `${wrong} in ${JSON.stringify(got)}`);
    });
  }
});

describe('password finder: ranking and the cap', () => {
  it('ranks by distance to the keyword: the value after the separator before a quoted token further away', () => {
    const got = findPasswordCandidates('Password for the zip: 4455\n\nPS: the code on the form is "B-12".');
    assert.deepEqual(
      got.map((c) => c.password),
      ['4455', 'B-12'],
    );
    assert.ok(got[0].distance < got[1].distance);
  });

  it('the same password found twice counts once, at its nearest distance', () => {
    const got = findPasswordCandidates('Password: 2021\nThe password is "2021".');
    assert.equal(got.filter((c) => c.password === '2021').length, 1);
  });

  it(`a text stuffed with decoys yields at most ${MAX_PASSWORDS}, the nearest first`, () => {
    const text = Array.from({ length: 60 }, (_, i) => `Password: decoy${i}`).join('\n');
    const got = findPasswords(text);
    assert.equal(got.length, MAX_PASSWORDS);
    assert.deepEqual(got.slice(0, 2), ['decoy0', 'decoy1']);
  });

  it('a text of 100,000 password words and quotes is read to the end of its budget, and still yields at most the cap', () => {
    // the keyword count and the windows read around each keyword are bounded (no wall-time assertion: the suite's timeout is the guard)
    const got = findPasswords('password: x1 パスワードは「Ab12」です '.repeat(100_000));
    assert.ok(got.length <= MAX_PASSWORDS);
    assert.deepEqual([...got].sort(), ['Ab12', 'x1']);
  });
});

describe('password finder: through the MIME pass', function () {
  this.timeout(30_000);
  const policy = loadPolicy(defaultPolicyFile, []).policy;
  const docm = () => buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });

  it('a full-width password on the line after the announcement, in the HTML part only, opens the zip; the macro inside is found', async () => {
    const zip = await buildZip([{ name: '請求書.docm', data: await docm(), password: 'Kx7#p2mQ', zipCrypto: true }]);
    const eml = await emailWith([{ filename: '請求書.zip', content: zip }], {
      text: '佐藤様\n\n見積書を送付いたします。',
      html: '<div>佐藤様</div><div>解凍パスワードは以下の通りです。</div><div><br></div><div>　<b>Ｋｘ７＃ｐ２ｍＱ</b></div><div>よろしくお願いいたします。</div>',
    });
    const { findings, passwords } = await parseMessageParts(eml, policy);
    assert.equal(passwords[0], 'Kx7#p2mQ');
    assert.ok(
      findings.some((f) => f.symbol === 'OFFICE_MACRO'),
      JSON.stringify(findings),
    );
  });

  it('a text part that shows markup is read as text: "Password: <Zq-77>" is not a tag to strip', async () => {
    const zip = await buildZip([{ name: 'invoice.docm', data: await docm(), password: 'Zq-77' }]);
    const eml = await emailWith([{ filename: 'invoice.zip', content: zip }], { text: 'In the template, write <b>bold</b> like this.\nPassword: <Zq-77>\n' });
    const { findings, passwords } = await parseMessageParts(eml, policy);
    assert.equal(passwords[0], 'Zq-77');
    assert.ok(findings.some((f) => f.symbol === 'OFFICE_MACRO'));
  });

  it('decoys cannot spend the budget: the zip is tried with the capped list and stays held, saying so', async () => {
    const zip = await buildZip([{ name: 'invoice.docm', data: await docm(), password: 'the-real-one' }]);
    const text = Array.from({ length: 40 }, (_, i) => `Password: decoy${i}`).join('\n');
    const eml = await emailWith([{ filename: 'invoice.zip', content: zip }], { text });
    const { findings } = await parseMessageParts(eml, policy);
    const locked = findings.find((f) => f.symbol === 'ARCHIVE_ENCRYPTED_UNSCANNABLE');
    assert.ok(locked, JSON.stringify(findings));
    assert.match(locked.detail!, new RegExp(`none of ${MAX_PASSWORDS} candidate password`));
  });

  it('extra passwords (from a separate password mail) are tried before the message has any of its own', async () => {
    const zip = await buildZip([{ name: 'invoice.docm', data: await docm(), password: 'Sep-4411' }]);
    const eml = await emailWith([{ filename: 'invoice.zip', content: zip }], { text: 'The password follows in a second mail.' });
    const without = await parseMessageParts(eml, policy);
    assert.ok(without.findings.some((f) => f.symbol === 'ARCHIVE_ENCRYPTED_UNSCANNABLE'));
    const withExtra = await parseMessageParts(eml, policy, { extraPasswords: ['Sep-4411'] });
    assert.ok(
      withExtra.findings.some((f) => f.symbol === 'OFFICE_MACRO'),
      JSON.stringify(withExtra.findings),
    );
    assert.ok(!withExtra.findings.some((f) => f.symbol === 'ARCHIVE_ENCRYPTED_UNSCANNABLE'));
  });
});

describe('password finder: the ASCII fast path', () => {
  it('finds the same keywords in every ASCII text of the family as the full expression', () => {
    const texts = [...phrasings().map((p) => p.text), ...NEAR_NEIGHBOURS.map((n) => n.text), ...NO_PASSWORD].filter((t) => /^[\x00-\x7f]*$/.test(t));
    assert.ok(texts.length > 300, String(texts.length));
    const matches = (re: RegExp, t: string) => [...t.matchAll(re)].map((m) => [m.index, m[0], m[1]]);
    for (const t of texts) assert.deepEqual(matches(KEYWORD_ASCII, t), matches(KEYWORD, t), t);
  });
});
