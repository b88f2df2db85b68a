/// <reference lib="dom" />
// The console in a real browser (Debian's chromium through puppeteer-core): signing in, the list,
// an item with its findings and attachments, a safe preview of a hostile message that runs nothing
// and loads nothing, a release that delivers exactly once to a real downstream, a POST without a
// CSRF token refused, an auditor who cannot release, the login rate limit and the SSO header.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { buildDocx, buildVbaCfb, buildZip } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';
import { clickAndWait, launchBrowser, signIn, startRemote } from '../helpers/browser.js';
import { startConsoleRig, startTestConsole, type ConsoleRig } from '../helpers/console.js';

/** Every URL the page asks for, from now on. */
function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request) => urls.push(request.url()));
  return urls;
}

describe('console in a browser (chromium)', function () {
  this.timeout(120_000);
  let browser: Browser;
  let rig: ConsoleRig;
  let remote: Awaited<ReturnType<typeof startRemote>>;
  let hostileId: string;
  let hostileBytes: Buffer;
  let page: Page;

  before(async function () {
    browser = await launchBrowser(this);
    remote = await startRemote();
    rig = await startConsoleRig();
    const docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
    const zip = await buildZip([{ name: 'invoice.docm', data: docm }]);
    const r = remote.url;
    hostileBytes = await emailWith([{ filename: 'invoice.zip', content: zip, contentType: 'application/zip' }], {
      subject: 'Invoice 4471 overdue',
      text: 'Please pay the attached invoice.',
      html:
        `<p>Dear customer,</p><script>window.__pwned = 1; document.title = 'pwned'; new Image().src = '${r}/script-ran';</script>` +
        `<img src="${r}/pixel.png" alt="logo"><img src="x" onerror="window.__pwned = 2">` +
        `<div style="background:url(${r}/inline-style.png)">styled</div><style>body{background:url(${r}/style-tag.png)}</style>` +
        `<link rel="stylesheet" href="${r}/sheet.css"><iframe src="${r}/frame"></iframe>` +
        `<a href="${r}/phish">Pay the invoice</a><form action="${r}/post"><input name="card"></form>`,
    });
    hostileId = await rig.hold(hostileBytes);
  });

  after(async () => {
    await browser?.close();
    await rig?.close();
    await remote?.close();
  });

  beforeEach(async () => {
    page = await (await browser.createBrowserContext()).newPage();
    await page.setViewport({ width: 1366, height: 768 });
  });

  afterEach(async () => {
    await page.browserContext().close();
  });

  it('signs in and lists the held message', async () => {
    const base = rig.console.url;
    await page.goto(`${base}/quarantine`);
    assert.match(page.url(), /\/login\?next=%2Fquarantine$/, 'not signed in: sent to the sign-in page');
    await signIn(page, base, 'admin', undefined, '/quarantine');
    assert.equal(new URL(page.url()).pathname, '/quarantine');
    const rows = await page.$$eval('table.items tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    const row = rows.find((r) => r.includes('Invoice 4471 overdue'));
    assert.ok(row, rows.join('\n'));
    assert.match(row, /alice@internal\.test/);
    assert.match(row, /bob@outside\.test \+1/);
    assert.match(row, /OFFICE_MACRO/);
  });

  it('shows the item: envelope, findings with their place, attachments by content with SHA-256', async () => {
    const base = rig.console.url;
    await signIn(page, base, 'admin', undefined, `/quarantine/${hostileId}`);
    const text = await page.$eval('main', (m) => m.textContent ?? '');
    assert.match(text, /MAIL FROM:<alice@internal\.test>/);
    assert.match(text, /RCPT TO:<carol@outside\.test>/);
    const findings = await page.$$eval('table.findings tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    const macro = findings.find((f) => /OFFICE_MACRO\b/.test(f));
    assert.ok(macro, findings.join('\n'));
    assert.match(macro, /invoice\.zip\s*›\s*invoice\.docm/, 'the finding says where in the message it is');
    const attachments = await page.$$eval('table.attachments tbody tr td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.equal(attachments[0], 'invoice.zip');
    assert.equal(attachments[2], 'zip', 'type by content');
    const zipSha = attachments[4];
    assert.match(zipSha, /^[0-9a-f]{64}$/);
  });

  it('previews a hostile HTML message: no script runs, nothing remote is loaded, the link is text', async () => {
    const base = rig.console.url;
    await signIn(page, base, 'admin');
    const requests = recordRequests(page);
    await page.goto(`${base}/quarantine/${hostileId}`, { waitUntil: 'networkidle0' });
    const preview = await page.$eval('.preview-html', (d) => ({ html: d.innerHTML, text: d.textContent ?? '' }));
    assert.match(preview.text, /Dear customer/);
    assert.match(preview.text, /Pay the invoice/);
    assert.doesNotMatch(preview.html, /<(script|img|a|iframe|link|style|form|input)\b/i, preview.html);
    assert.doesNotMatch(preview.html, /onerror|url\(/i);
    // the link's target is shown as text (CSS generated content from data-href), not followed
    const shown = await page.$eval('.preview-html .mm-link', (el) => getComputedStyle(el, '::after').content);
    assert.ok(shown.includes(`${remote.url}/phish`), shown);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script of the message ran');
    assert.notEqual(await page.title(), 'pwned');
    const outside = requests.filter((u) => !u.startsWith(`${base}/`));
    assert.deepEqual(outside, [], 'the page asked for nothing but the console');
    assert.deepEqual(remote.hits, [], 'nothing reached the remote server');
  });

  it('releases through the browser: confirmed, delivered once to the downstream, refused the second time', async () => {
    const base = rig.console.url;
    const id = await rig.hold(Buffer.from('From: alice@internal.test\r\nTo: bob@outside.test\r\nSubject: hold for release\r\n\r\nPlease release me.\r\n'));
    const before = rig.sink.messages.length;
    await signIn(page, base, 'admin', undefined, `/quarantine/${id}`);
    await clickAndWait(page, 'form.actions button[value=release]');
    assert.match(await page.$eval('h1', (h) => h.textContent ?? ''), /Release these messages\?/);
    assert.equal(rig.sink.messages.length, before, 'the confirmation page delivers nothing');
    await clickAndWait(page, 'form button.primary[type=submit]');
    assert.match(await page.$eval('table.results', (t) => t.textContent ?? ''), /released/);
    assert.equal(rig.sink.messages.length, before + 1, 'delivered once');
    const delivered = rig.sink.messages.at(-1)!;
    assert.equal(delivered.mailLine, 'MAIL FROM:<alice@internal.test>');
    assert.deepEqual(delivered.rcptLines, ['RCPT TO:<bob@outside.test>', 'RCPT TO:<carol@outside.test>']);
    assert.match(delivered.bytes.toString(), new RegExp(`^X-Mailmoat-Released: id=${id}; by=admin; `));
    const original = await rig.console.store.readMessage(id);
    assert.equal(
      createHash('sha256')
        .update(delivered.bytes.subarray(delivered.bytes.indexOf('\r\n') + 2))
        .digest('hex'),
      createHash('sha256').update(original).digest('hex'),
    );
    const audit = (await import('node:fs')).readFileSync(rig.console.store.auditFile, 'utf8');
    assert.match(audit, new RegExp(`"action":"release","id":"${id}","operator":"admin","result":"released"`));

    // again, from the item page: the same code refuses a second delivery
    await page.goto(`${base}/quarantine/${id}`);
    await clickAndWait(page, 'form.actions button[value=release]');
    await clickAndWait(page, 'form button.primary[type=submit]');
    assert.match(await page.$eval('table.results', (t) => t.textContent ?? ''), /refused.*already released/s);
    assert.equal(rig.sink.messages.length, before + 1, 'still delivered once');
  });

  it('refuses a POST whose CSRF token was removed, and changes nothing', async () => {
    const base = rig.console.url;
    const id = await rig.hold(Buffer.from('Subject: hold csrf\r\n\r\nbody\r\n'));
    const before = rig.sink.messages.length;
    await signIn(page, base, 'admin', undefined, `/quarantine/${id}`);
    await clickAndWait(page, 'form.actions button[value=release]');
    await page.$eval('form[action="/quarantine/act"] input[name=_csrf]', (input) => input.remove());
    await clickAndWait(page, 'form button.primary[type=submit]');
    assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /CSRF check failed/);
    assert.equal(rig.sink.messages.length, before);
    assert.equal((await rig.console.store.get(id)).state, 'held');
  });

  it('an auditor sees the item but has no release button, and a forged POST with their own token is refused', async () => {
    const base = rig.console.url;
    const id = await rig.hold(Buffer.from('Subject: hold auditor\r\n\r\nbody\r\n'));
    const before = rig.sink.messages.length;
    await signIn(page, base, 'auditor', undefined, `/quarantine/${id}`);
    assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /hold auditor/);
    assert.equal(await page.$('form.actions button[value=release]'), null, 'no action buttons for an auditor');
    // the auditor's own valid token (the sign-out form's), put into a release form
    await page.$eval(
      'form[action="/logout"]',
      (form, itemId) => {
        form.setAttribute('action', '/quarantine/act');
        for (const [name, value] of [
          ['action', 'release'],
          ['confirm', 'yes'],
          ['id', itemId],
        ]) {
          const input = document.createElement('input');
          input.type = 'hidden';
          input.name = name;
          input.value = value;
          form.append(input);
        }
      },
      id,
    );
    await clickAndWait(page, 'form[action="/quarantine/act"] button');
    assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /auditor \(read-only\)/);
    assert.equal(rig.sink.messages.length, before, 'nothing delivered');
    assert.equal((await rig.console.store.get(id)).state, 'held');
  });

  it('fits a 1366×768 screen and a phone: no page wider than the window (wide tables scroll in their box)', async () => {
    const base = rig.console.url;
    const shots = process.env.MAILMOAT_SCREENSHOTS; // a directory: the README's pictures are made here
    await signIn(page, base, 'admin', undefined, '/quarantine');
    for (const [name, viewport] of [
      ['desktop', { width: 1366, height: 768 }],
      ['phone', { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }],
    ] as const) {
      await page.setViewport(viewport);
      for (const where of ['/', '/quarantine', `/quarantine/${hostileId}`, '/senders']) {
        await page.goto(base + where);
        const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert.ok(scrollWidth <= innerWidth, `${where} on ${name}: ${scrollWidth}px wide in a ${innerWidth}px window`);
      }
    }
    if (shots) {
      await page.setViewport({ width: 1366, height: 768 });
      await page.goto(`${base}/quarantine`);
      await page.screenshot({ path: path.join(shots, 'console-quarantine.png') });
      await page.goto(`${base}/quarantine/${hostileId}`);
      await page.screenshot({ path: path.join(shots, 'console-item.png'), fullPage: true });
    }
  });

  it('limits sign-in attempts per address: past the limit even the right password gets 429', async () => {
    const web = await startTestConsole(mkdtempSync(path.join(tmpdir(), 'mailmoat-console-limit-')), [
      'console.loginLimit.attempts=3',
      'console.loginLimit.window=10m',
    ]);
    try {
      for (let i = 0; i < 3; i++) {
        await signIn(page, web.url, 'admin', 'wrong password');
        assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /Wrong user name or password/);
      }
      const response = page.waitForResponse((r) => r.url() === `${web.url}/login` && r.request().method() === 'POST');
      await signIn(page, web.url, 'admin');
      assert.equal((await response).status(), 429);
      assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /Too many sign-in attempts/);
      await page.goto(`${web.url}/quarantine`);
      assert.match(page.url(), /\/login/, 'not signed in');
    } finally {
      await web.close();
    }
  });

  it('takes the SSO header from a listed proxy address, and ignores it from any other', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-console-sso-'));
    const listed = await startTestConsole(dir, ['console.sso.header=X-Remote-User', 'console.proxies=["127.0.0.1/32"]']);
    const unlisted = await startTestConsole(dir, ['console.sso.header=X-Remote-User', 'console.proxies=["192.0.2.10/32"]']);
    try {
      await page.setExtraHTTPHeaders({ 'X-Remote-User': 'carol' });
      await page.goto(`${listed.url}/quarantine`);
      assert.equal(new URL(page.url()).pathname, '/quarantine');
      assert.match(await page.$eval('header', (h) => h.textContent ?? ''), /Signed in as carol \(auditor \(read-only\)\)/);
      await page.goto(`${unlisted.url}/quarantine`);
      assert.equal(new URL(page.url()).pathname, '/login', 'the header from an address not in console.proxies signs nobody in');
      assert.ok(unlisted.logs.some((l) => l.event === 'console_sso_refused'));
    } finally {
      await listed.close();
      await unlisted.close();
    }
  });
});
