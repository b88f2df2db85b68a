/// <reference lib="dom" />
// The recipients' page behind a digest link, in a real browser (chromium) and over HTTP: a digest
// sent to a real downstream and its link followed; the safe preview of their own copy only; a release
// of their copy delivered once, to them only; a request recorded, the admin told with the console's
// address, and approved in the console (delivered once); links for someone else's item, expired or
// altered refused; a POST without the link's CSRF token refused; opening a link changes nothing;
// requests rate limited.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import type { Browser, Page } from 'puppeteer-core';
import { linkCsrf } from '../../src/console/recipient.js';
import { createRecipientToken, readTokenKey } from '../../src/console/tokens.js';
import { sendDigests } from '../../src/quarantine/digest.js';
import { pendingRequests } from '../../src/quarantine/requests.js';
import { recipientAccess } from '../../src/quarantine/rights.js';
import { clickAndWait, launchBrowser, signIn, startRemote } from '../helpers/browser.js';
import { ConsoleClient, csrfToken, startConsoleRig, startTestConsole, type ConsoleRig } from '../helpers/console.js';
import type { ReceivedMessage } from '../helpers/sink.js';

const RULES =
  'rules.headers=[' +
  '{symbol: SUBJECT_HOLD, header: Subject, match: "^hold", score: 4, action: quarantine},' +
  '{symbol: SUBJECT_ASK, header: Subject, match: "^ask", score: 4, action: quarantine},' +
  '{symbol: SUBJECT_BLOCK, header: Subject, match: "^block", score: 4, action: quarantine}]';
const RIGHTS = 'quarantine.rights.symbols={SUBJECT_HOLD: release, SUBJECT_ASK: request, SUBJECT_BLOCK: none}';
const PUBLIC_URL = 'https://mail.internal.test/mm';
const HOUR = 3_600_000;

function message(subject: string, body = 'Please find the order attached.', htmlBody?: string): Buffer {
  const head = `From: Alice <alice@internal.test>\r\nTo: bob@internal.test, carol@internal.test\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n`;
  if (!htmlBody) return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`);
  return Buffer.from(`${head}Content-Type: text/html; charset=utf-8\r\n\r\n${htmlBody}\r\n`);
}

function deliveredTo(messages: ReceivedMessage[]): string[] {
  return messages.map((m) => m.rcptLines.join(' '));
}

describe('the recipients’ page behind a digest link', function () {
  this.timeout(120_000);
  let rig: ConsoleRig;
  let key: Buffer;
  let base: string;
  let remote: Awaited<ReturnType<typeof startRemote>>;

  const tokenFor = (id: string, recipient: string, expiresAt = Date.now() + HOUR) => createRecipientToken(key, { id, recipient, expiresAt });
  const hold = (subject: string, rcpts = ['bob@internal.test', 'carol@internal.test'], htmlBody?: string) =>
    rig.hold(
      message(subject, undefined, htmlBody),
      rcpts.map((r) => `RCPT TO:<${r}>`),
    );
  const itemFiles = (id: string) => ({
    json: readFileSync(rig.console.store.jsonFile(id), 'utf8'),
    audit: existsSync(rig.console.store.auditFile) ? readFileSync(rig.console.store.auditFile, 'utf8') : '',
  });

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-recipient-'));
    const keyFile = path.join(dir, 'link.key');
    writeFileSync(keyFile, randomBytes(48).toString('base64') + '\n', { mode: 0o600 });
    key = await readTokenKey(keyFile);
    remote = await startRemote();
    rig = await startConsoleRig(
      [
        RIGHTS,
        `quarantine.digest.keyFile=${JSON.stringify(keyFile)}`,
        `quarantine.digest.baseUrl="${PUBLIC_URL}"`,
        'quarantine.notify.from="mailmoat@internal.test"',
        'quarantine.requests.admin="postmaster@internal.test"',
        'quarantine.requests.limit=3',
      ],
      [RULES],
    );
    base = rig.console.url;
  });

  after(async () => {
    await rig?.close();
    await remote?.close();
  });

  describe('in a browser (chromium)', () => {
    let browser: Browser;
    let page: Page;

    before(async function () {
      browser = await launchBrowser(this);
    });

    after(async () => {
      await browser?.close();
    });

    beforeEach(async () => {
      page = await (await browser.createBrowserContext()).newPage();
      await page.setViewport({ width: 1366, height: 768 });
    });

    afterEach(async () => {
      await page.browserContext().close();
    });

    it('a digest sent to the real downstream; its link shows a safe preview of the own copy; releasing delivers once, to that recipient only', async () => {
      const r = remote.url;
      const id = await hold(
        'hold order 311',
        ['bob@internal.test', 'carol@internal.test'],
        `<p>Dear Bob,</p><script>window.__pwned = 1</script><img src="${r}/pixel.png"><a href="${r}/phish">the order</a>`,
      );
      // the digest, composed and sent by the product to the real downstream, links to this console
      const before = rig.sink.messages.length;
      const policy = rig.console.policy;
      const run = await sendDigests(rig.console.store, {
        ...policy,
        quarantine: { ...policy.quarantine, digest: { ...policy.quarantine.digest, baseUrl: base } },
      });
      assert.deepEqual(run.outcomes.map((o) => `${o.recipient} ${o.status}`).sort(), ['bob@internal.test sent', 'carol@internal.test sent']);
      const digest = rig.sink.messages.slice(before).find((m) => m.rcptLines[0] === 'RCPT TO:<bob@internal.test>');
      assert.ok(digest, 'bob got a digest');
      const parsed = await simpleParser(digest.bytes);
      const link = new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/r/[A-Za-z0-9._-]+`).exec(String(parsed.html))?.[0];
      assert.ok(link, String(parsed.html));

      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      const response = await page.goto(link, { waitUntil: 'networkidle0' });
      assert.equal(response?.status(), 200);
      assert.equal(response.headers()['referrer-policy'], 'no-referrer');
      assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'none'/);
      const main = await page.$eval('main', (m) => m.textContent ?? '');
      assert.match(main, /hold order 311/);
      assert.match(main, /Dear Bob/);
      assert.match(main, /bob@internal\.test \(you\)/);
      assert.doesNotMatch(main, /carol@internal\.test/, 'the other recipients are not shown');
      assert.match(main, /a rule of your organisation \(SUBJECT_HOLD\)/, 'why, in words');
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script of the message ran');
      assert.deepEqual(
        requests.filter((u) => !u.startsWith(`${base}/`)),
        [],
        'the page asked for nothing but the console',
      );
      assert.deepEqual(remote.hits, [], 'nothing reached the remote server');
      assert.equal((await page.$$('a[href*="/raw"], a[download]')).length, 0, 'no raw download');

      const sent = rig.sink.messages.length;
      await clickAndWait(page, 'form.actions button.primary');
      assert.match(await page.$eval('h1', (h) => h.textContent ?? ''), /Release this message to you\?/);
      assert.equal(rig.sink.messages.length, sent, 'the confirmation step delivers nothing');
      await clickAndWait(page, 'main form button.primary');
      assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /The message was delivered to bob@internal\.test/);
      const delivered = rig.sink.messages.slice(sent);
      assert.deepEqual(deliveredTo(delivered), ['RCPT TO:<bob@internal.test>'], 'delivered once, to bob only');
      assert.match(delivered[0].bytes.toString(), /Subject: hold order 311/);

      // the link again: nothing left to do; a replayed confirmation delivers nothing more
      await page.goto(link);
      assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /already delivered to your inbox/);
      const client = new ConsoleClient(base);
      const token = link.slice(link.lastIndexOf('/') + 1);
      // the page offers no form any more; the token its form had is the link's own
      const again = await client.post(`/r/${token}/release`, { confirm: 'yes', _csrf: linkCsrf(key, token) });
      assert.equal(again.status, 409);
      assert.equal(rig.sink.messages.length, sent + 1, 'still one delivery');
      const meta = await rig.console.store.get(id);
      assert.ok(recipientAccess(rig.console.policy, meta, 'carol@internal.test').actionable, 'carol’s copy is still held');
    });

    it('a request: recorded, the admin told with the console’s address, approved in the console and delivered once', async () => {
      const id = await hold('ask for the contract');
      const token = tokenFor(id, 'bob@internal.test');
      await page.goto(`${base}/r/${token}`);
      await page.type('form.request textarea[name=note]', 'I expect this contract from Alice.');
      await clickAndWait(page, 'form.request button.primary');
      assert.match(await page.$eval('h1', (h) => h.textContent ?? ''), /Ask for its release\?/);
      await clickAndWait(page, 'main form button.primary');
      assert.match(await page.$eval('main', (m) => m.textContent ?? ''), /Your request was recorded/);
      const meta = await rig.console.store.get(id);
      assert.deepEqual(
        pendingRequests(meta).map((p) => [p.recipient, p.note]),
        [['bob@internal.test', 'I expect this contract from Alice.']],
      );
      const notice = rig.sink.messages.find((m) => m.rcptLines[0] === 'RCPT TO:<postmaster@internal.test>' && m.bytes.includes(id));
      assert.ok(notice, 'the admin was mailed');
      const noticeText = (await simpleParser(notice.bytes)).text ?? '';
      assert.ok(noticeText.includes(`${PUBLIC_URL}/quarantine/${id}`), noticeText);

      // the admin: the pending filter finds it; the item shows the request; Approve releases to bob only
      await signIn(page, base, 'admin', undefined, '/quarantine?requests=pending');
      const rows = await page.$$eval('table.items tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
      assert.equal(rows.filter((r) => r.includes('ask for the contract')).length, 1, rows.join('\n'));
      assert.ok(
        rows.every((r) => /release requested/.test(r)),
        rows.join('\n'),
      );
      await page.goto(`${base}/quarantine/${id}`);
      const request = await page.$eval('table.requests tbody tr', (tr) => tr.textContent ?? '');
      assert.match(request, /bob@internal\.test/);
      assert.match(request, /I expect this contract from Alice\./);
      const sent = rig.sink.messages.length;
      await clickAndWait(page, 'table.requests button.primary');
      const ticked = await page.$$eval('input[name=rcpt]', (inputs) => inputs.map((i) => `${i.value}:${i.checked}`));
      assert.deepEqual(ticked, ['bob@internal.test:true', 'carol@internal.test:false'], 'only the recipient who asked');
      assert.equal(rig.sink.messages.length, sent);
      await clickAndWait(page, 'main form button.primary');
      assert.deepEqual(deliveredTo(rig.sink.messages.slice(sent)), ['RCPT TO:<bob@internal.test>'], 'delivered once, to bob only');
      assert.deepEqual(pendingRequests(await rig.console.store.get(id)), [], 'the request is answered');
      await page.goto(`${base}/quarantine?requests=pending`);
      const after = await page.$$eval('table.items tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
      assert.equal(after.filter((r) => r.includes('ask for the contract')).length, 0, 'no longer pending');
    });

    it('a request declined in the console: the recipient is told by mail with the reason, the page says so, a new request is refused, the message stays held', async () => {
      const id = await hold('ask for the gift card');
      const token = tokenFor(id, 'carol@internal.test');
      await page.goto(`${base}/r/${token}`);
      await clickAndWait(page, 'form.request button.primary');
      await clickAndWait(page, 'main form button.primary');
      assert.equal(pendingRequests(await rig.console.store.get(id)).length, 1);

      await signIn(page, base, 'admin', undefined, `/quarantine/${id}`);
      await page.type('table.requests form.decline input[name=reason]', 'Gift card requests are phishing; see the notice of 1 May.');
      const sent = rig.sink.messages.length;
      await clickAndWait(page, 'table.requests form.decline button');
      const results = await page.$eval('table.results', (t) => t.textContent ?? '');
      assert.match(results, /request declined.*carol@internal\.test was told by mail/s, results);
      const told = rig.sink.messages.slice(sent);
      assert.deepEqual(
        told.map((m) => m.rcptLines),
        [['RCPT TO:<carol@internal.test>']],
        'the recipient only is told, nothing is released',
      );
      const notice = await simpleParser(told[0].bytes);
      assert.match(notice.subject ?? '', /declined|却下/);
      assert.match(notice.text ?? '', /Gift card requests are phishing/);
      assert.match(notice.text ?? '', /ask for the gift card/);
      const meta = await rig.console.store.get(id);
      assert.equal(meta.state, 'held');
      assert.deepEqual(pendingRequests(meta), []);
      assert.ok(meta.history.some((h) => h.event === 'release-declined' && h.by === 'admin' && h.recipients?.[0] === 'carol@internal.test'));
      assert.match(itemFiles(id).audit, new RegExp(`"action":"release-decline","id":"${id}","operator":"admin","result":"declined"`));

      // the recipient's page: declined, with the reason, and no request button; asking again is refused
      await page.goto(`${base}/r/${token}`);
      const main = await page.$eval('main', (m) => m.textContent ?? '');
      assert.match(main, /An administrator declined your request on/);
      assert.match(main, /Their reason: Gift card requests are phishing/);
      assert.equal(await page.$('form.request'), null, 'no request button');
      const client = new ConsoleClient(base);
      const again = await client.request('POST', `/r/${token}/request`, { _csrf: linkCsrf(key, token), confirm: 'yes' });
      assert.equal(again.status, 409, again.body);
      assert.match(again.body, /declined your request for this message/);
      assert.deepEqual(pendingRequests(await rig.console.store.get(id)), []);
    });
  });

  describe('over HTTP', () => {
    it('a token works for its item and recipient only: another recipient’s item, expired, altered or cut links are refused', async () => {
      const shared = await hold('hold shared invoice');
      const carolsOnly = await hold('hold for carol', ['carol@internal.test']);
      const client = new ConsoleClient(base);
      const ok = await client.get(`/r/${tokenFor(shared, 'bob@internal.test')}`);
      assert.equal(ok.status, 200);
      assert.match(ok.body, /hold shared invoice/);

      const other = await client.get(`/r/${tokenFor(carolsOnly, 'bob@internal.test')}`);
      assert.equal(other.status, 404);
      assert.match(other.body, /no longer held here, or this link is not for it/);
      assert.doesNotMatch(other.body, /hold for carol/);

      const expired = await client.get(`/r/${tokenFor(shared, 'bob@internal.test', Date.now() - 60_000)}`);
      assert.equal(expired.status, 410);
      assert.match(expired.body, /This link expired/);
      assert.doesNotMatch(expired.body, /hold shared invoice/);

      const good = tokenFor(shared, 'bob@internal.test');
      const fields = good.split('.');
      // bob's token made to name carol: the signature no longer matches
      fields[3] = Buffer.from('carol@internal.test').toString('base64url');
      const altered = await client.get(`/r/${fields.join('.')}`);
      assert.equal(altered.status, 403);
      assert.match(altered.body, /incomplete or was altered/);
      const cut = await client.get(`/r/${good.slice(0, -10)}`);
      assert.equal(cut.status, 403);
      // and none of them can act
      const page = ok.body;
      for (const token of [fields.join('.'), tokenFor(carolsOnly, 'bob@internal.test')]) {
        const r = await client.post(`/r/${token}/release`, { confirm: 'yes' }, page);
        assert.ok(r.status === 403 || r.status === 404, String(r.status));
      }
      assert.equal((await rig.console.store.get(carolsOnly)).history.length, 1, 'carol’s item untouched');
    });

    it('opening a link (as a link scanner would, repeatedly) changes nothing: same item record, same audit log', async () => {
      const id = await hold('hold scanned');
      const token = tokenFor(id, 'bob@internal.test');
      const before = itemFiles(id);
      const client = new ConsoleClient(base);
      for (let i = 0; i < 3; i++) assert.equal((await client.get(`/r/${token}`)).status, 200);
      assert.equal((await fetch(`${base}/r/${token}`, { method: 'HEAD' })).status, 200);
      assert.equal((await client.get(`/r/${token}/release`)).status, 404, 'an action is never a GET');
      assert.deepEqual(itemFiles(id), before);
    });

    it('a POST without the link’s CSRF token (or with another link’s) is refused and changes nothing', async () => {
      const id = await hold('hold csrf');
      const other = await hold('hold csrf other');
      const token = tokenFor(id, 'bob@internal.test');
      const before = itemFiles(id);
      const sent = rig.sink.messages.length;
      const client = new ConsoleClient(base);
      const none = await client.post(`/r/${token}/release`, { confirm: 'yes' });
      assert.equal(none.status, 403);
      assert.match(none.body, /did not come from this page/);
      const otherPage = (await client.get(`/r/${tokenFor(other, 'bob@internal.test')}`)).body;
      const foreign = await client.post(`/r/${token}/release`, { confirm: 'yes', _csrf: csrfToken(otherPage) });
      assert.equal(foreign.status, 403);
      assert.equal(rig.sink.messages.length, sent, 'nothing delivered');
      assert.deepEqual(itemFiles(id).json, before.json);
      assert.ok(rig.console.logs.some((l) => l.event === 'console_csrf_refused'));
    });

    it('shows the recipient’s right: `none` is explained, with no button, and its POST is refused', async () => {
      const id = await hold('block this');
      const token = tokenFor(id, 'bob@internal.test');
      const client = new ConsoleClient(base);
      const page = await client.get(`/r/${token}`);
      assert.match(page.body, /Only an administrator can release this message/);
      assert.doesNotMatch(page.body, /action="\/r\//);
      const r = await client.post(`/r/${token}/release`, { confirm: 'yes', _csrf: linkCsrf(key, token) });
      assert.equal(r.status, 403);
      assert.match(r.body, /not allowed for this message/);
      assert.equal((await rig.console.store.get(id)).history.length, 1);
    });

    it('speaks the browser’s language (Japanese) and sends the console’s strict headers', async () => {
      const id = await hold('hold 日本語');
      const client = new ConsoleClient(base, { 'accept-language': 'ja,en;q=0.5' });
      const r = await client.get(`/r/${tokenFor(id, 'bob@internal.test')}`);
      assert.equal(r.status, 200);
      assert.match(r.body, /<html lang="ja">/);
      assert.match(r.body, /受信箱に届ける/);
      const admin = await new ConsoleClient(base).get('/login');
      for (const h of ['content-security-policy', 'referrer-policy', 'x-frame-options', 'x-content-type-options', 'cache-control']) {
        assert.equal(r.headers.get(h), admin.headers.get(h), h);
      }
    });

    it('a console without a link key (quarantine.digest.keyFile) says links are not set up (503) and logs why', async () => {
      const bare = await startTestConsole(mkdtempSync(path.join(tmpdir(), 'mailmoat-recipient-nokey-')));
      try {
        const r = await new ConsoleClient(bare.url).get(`/r/${tokenFor('01M8XTCZ2A7ZR6A6ZRZ7TPFJZM', 'bob@internal.test')}`);
        assert.equal(r.status, 503);
        assert.match(r.body, /Recipient links are not set up on this console/);
        assert.ok(bare.logs.some((l) => l.event === 'recipient_link_key' && /keyFile is not set/.test(String(l.err))));
      } finally {
        await bare.close();
      }
    });

    it('rate limits a recipient’s requests (quarantine.requests.limit): 429 with Retry-After past the limit', async () => {
      const client = new ConsoleClient(base);
      const statuses: number[] = [];
      let last = { status: 0, body: '', headers: new Headers() };
      for (let i = 0; i < 4; i++) {
        const id = await hold(`ask limit ${i}`, ['dave@internal.test']);
        const token = tokenFor(id, 'dave@internal.test');
        const page = await client.get(`/r/${token}`);
        last = await client.post(`/r/${token}/request`, { confirm: 'yes', note: '' }, page.body);
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      assert.match(last.body, /too many requests or releases/);
      assert.ok(Number(last.headers.get('retry-after')) > 0);
    });
  });
});
