// The console's parts that need no server: the HTML sanitiser of the safe preview, the template's
// escaping, the language choice, password hashes, and the overview counters in memory and in real
// Redis (bounded by TTL).
import assert from 'node:assert/strict';
import { fromAcceptLanguage } from '../../src/console/i18n.js';
import { html } from '../../src/console/layout.js';
import { buildPreview, sanitizeMessageHtml } from '../../src/console/preview.js';
import { hashPassword, verifyPassword } from '../../src/console/users.js';
import { DAY, HOUR, MemoryRollup, RedisRollup } from '../../src/state/rollup.js';
import { keysWithPrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';

describe('console: safe preview', () => {
  it('drops scripts, styles, event handlers, frames, forms and every URL-bearing attribute', () => {
    const dirty = [
      '<p onclick="x()">Hi <b>there</b></p>',
      '<script>alert(1)</script><noscript>n</noscript>',
      '<style>body{background:url(http://x.test/a)}</style>',
      '<div style="background:url(http://x.test/b)">styled</div>',
      '<img src="http://x.test/c.png" alt="logo" onerror="alert(2)"><img srcset="http://x.test/d 2x">',
      '<a href="javascript:alert(3)">js</a><a href="http://x.test/e">web</a>',
      '<iframe src="http://x.test/f"></iframe><object data="http://x.test/g"></object><embed src="http://x.test/h">',
      '<form action="http://x.test/i"><input name="q"><button>go</button></form>',
      '<svg><image href="http://x.test/j"/></svg><math><mi xlink:href="http://x.test/k">m</mi></math>',
      '<link rel="stylesheet" href="http://x.test/l"><meta http-equiv="refresh" content="0;url=http://x.test/m"><base href="http://x.test/">',
      '<table background="http://x.test/n"><tr><td background="http://x.test/o" colspan="2">cell</td></tr></table>',
    ].join('');
    const clean = sanitizeMessageHtml(dirty);
    assert.doesNotMatch(clean, /<(script|style|img|a|iframe|object|embed|form|input|svg|image|math|link|meta|base)\b/i, clean);
    assert.doesNotMatch(clean, /\s(on\w+|style|src|srcset|href|xlink:href|action|background|content)=|url\(/i, clean);
    // a javascript: target is only ever text in a data attribute, shown beside the link's words
    assert.deepEqual(clean.match(/alert\(\d\)/g), ['alert(3)', 'alert(3)']);
    assert.match(clean, /<span class="mm-link" data-href="javascript:alert\(3\)" title="javascript:alert\(3\)">js<\/span>/);
    assert.match(clean, /<p>Hi <b>there<\/b><\/p>/);
    assert.match(clean, /<td colspan="2">cell<\/td>/);
    // links and images become labelled placeholders: the target shown as data, never loaded or followed
    assert.match(clean, /<span class="mm-link" data-href="http:\/\/x.test\/e" title="http:\/\/x.test\/e">web<\/span>/);
    assert.match(clean, /<span class="mm-img" data-src="http:\/\/x.test\/c.png" title="logo"><\/span>/);
    assert.ok(!clean.includes('x.test/a') && !clean.includes('x.test/b'), 'CSS URLs are gone with the styles');
  });

  it('keeps a text part as text and lists attachments with their type by content and SHA-256', async () => {
    const raw = Buffer.from(
      'From: Alice <alice@internal.test>\r\nTo: bob@outside.test\r\nSubject: =?UTF-8?B?6KuL5rGC5pu4?=\r\nMIME-Version: 1.0\r\n' +
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n<b>not markup</b>\r\nline two\r\n' +
        '--b\r\nContent-Type: application/pdf; name="invoice.pdf"\r\nContent-Disposition: attachment; filename="invoice.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
        Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(504)]).toString('base64') +
        '\r\n--b--\r\n',
    );
    const preview = await buildPreview(raw);
    assert.equal(preview.subject, '請求書');
    assert.equal(preview.text?.trim(), '<b>not markup</b>\nline two');
    assert.equal(preview.safeHtml, undefined);
    assert.equal(preview.attachments.length, 1);
    const [a] = preview.attachments;
    assert.equal(a.filename, 'invoice.pdf');
    assert.equal(a.declaredType, 'application/pdf');
    assert.equal(a.kindByContent, 'cfb', 'judged by its bytes (an OLE2 compound file), not its name or type');
    assert.match(a.sha256, /^[0-9a-f]{64}$/);
  });

  it('the template escapes every value, control characters and bidi overrides included', () => {
    const out = html`<td title="${'a"b'}">${'<script>&\u202e\x1b'}</td>`.value;
    assert.equal(out, '<td title="a&quot;b">&lt;script&gt;&amp;\\u{202e}\\e</td>');
  });
});

describe('console: language and accounts', () => {
  it('picks the language by Accept-Language q-values, English when neither is asked for', () => {
    assert.equal(fromAcceptLanguage('ja-JP,ja;q=0.9,en-US;q=0.8'), 'ja');
    assert.equal(fromAcceptLanguage('en-US,en;q=0.9,ja;q=0.8'), 'en');
    assert.equal(fromAcceptLanguage('fr-FR, ja;q=0.2'), 'ja');
    assert.equal(fromAcceptLanguage('de'), 'en');
    assert.equal(fromAcceptLanguage(undefined), 'en');
    assert.equal(fromAcceptLanguage('ja;q=0'), 'en');
  });

  it('hashes passwords with scrypt, salted, and verifies only the right one', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.notEqual(a, b, 'salted');
    assert.equal(await verifyPassword('correct horse', a), true);
    assert.equal(await verifyPassword('correct horsf', a), false);
    assert.equal(await verifyPassword('correct horse', 'plain-text'), false);
  });
});

describe('console: overview counters (rollup)', () => {
  const now = Date.UTC(2024, 4, 10, 12, 30);

  async function exercise(rollup: MemoryRollup | RedisRollup): Promise<void> {
    await rollup.record(now - 2 * HOUR, 'relay', []);
    await rollup.record(now - 2 * HOUR, 'relay', []);
    await rollup.record(now, 'quarantine', ['OFFICE_MACRO', 'OFFICE_MACRO_AUTOEXEC']);
    await rollup.record(now, 'quarantine', ['OFFICE_MACRO', 'not a symbol']);
    await rollup.record(now - 3 * DAY, 'quarantine', ['SUBJECT_HOLD']);
    const view = await rollup.read(now, 24, 7);
    assert.equal(view.hours.length, 24);
    assert.deepEqual(view.hours.at(-1), { start: Date.UTC(2024, 4, 10, 12), actions: { quarantine: 2 } });
    assert.deepEqual(view.hours.at(-3)!.actions, { relay: 2 });
    assert.deepEqual(view.symbols, [
      { symbol: 'OFFICE_MACRO', count: 2 },
      { symbol: 'OFFICE_MACRO_AUTOEXEC', count: 1 },
    ]);
    assert.equal(view.days.length, 7);
    assert.deepEqual(view.days.at(-1)!.actions, { relay: 2, quarantine: 2 });
    assert.deepEqual(view.days.at(-4)!.actions, { quarantine: 1 });
  }

  it('counts by hour and day in memory', async () => {
    await exercise(new MemoryRollup());
  });

  it('counts by hour and day in real Redis, every key with a TTL', async () => {
    const redis = await testRedis();
    const prefix = `{${uniquePrefix()}rollup}:`;
    try {
      await exercise(new RedisRollup(redis, prefix));
      const keys = await keysWithPrefix(redis, prefix);
      assert.ok(keys.length >= 4);
      for (const key of keys) {
        const ttl = await redis.pttl(key);
        assert.ok(ttl > 0 && ttl <= (key.includes(':h:') ? 49 * HOUR : 32 * DAY), `${key} expires (${ttl} ms)`);
      }
    } finally {
      for (const key of await keysWithPrefix(redis, prefix)) await redis.del(key);
      redis.disconnect();
    }
  });
});
