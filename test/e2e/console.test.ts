// The console over real HTTP (no browser): headers, languages, the list's filters and paging, bulk
// actions, partial release, delete, sessions, the sender view and suspend, the overview's counters.
// The browser-driven cases are in console-browser.test.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ulid } from 'ulid';
import { deleteItem } from '../../src/quarantine/release.js';
import { QuarantineStore } from '../../src/quarantine/store.js';
import { UserFile } from '../../src/console/users.js';
import { connect, text, transaction } from '../helpers/client.js';
import { ConsoleClient, csrfToken, MAIL, startConsoleRig, startTestConsole, type ConsoleRig, type TestConsole } from '../helpers/console.js';

const HOUR = 3_600_000;

/** An item written by the store itself, with an id (so a time) of our choosing. */
async function putItem(store: QuarantineStore, at: number, opts: { from: string; to: string[]; symbol: string; subject: string }): Promise<string> {
  const id = ulid(at);
  const bytes = Buffer.from(`From: ${opts.from}\r\nSubject: ${opts.subject}\r\n\r\nbody\r\n`);
  await store.put(Readable.from([bytes]), {
    id,
    receivedAt: new Date(at).toISOString(),
    client: { address: '192.0.2.1', helo: 'client.test' },
    envelope: { mailFrom: opts.from, mailLine: `MAIL FROM:<${opts.from}>`, rcptTo: opts.to, rcptLines: opts.to.map((r) => `RCPT TO:<${r}>`) },
    size: bytes.length,
    findings: [{ symbol: opts.symbol, score: 5, part: 'a.zip > b.docm' }],
    verdict: { action: 'quarantine', score: 5, reason: opts.symbol },
    policyVersion: 'test',
  });
  return id;
}

/** A page with the layout's white space between tags (and in tags) taken out, for matching. */
function flat(page: string): string {
  return page
    .replace(/\s+/g, ' ')
    .replace(/>\s+</g, '><')
    .replace(/\s+>/g, '>')
    .replace(/<\/(\w+)\s*>/g, '</$1>');
}

/** The ids of the list page's rows, in order. */
function rowIds(page: string): string[] {
  return [...page.matchAll(/<td><input type="checkbox" name="id" value="([0-9A-Z]{26})"/g)].map((m) => m[1]);
}

describe('console over HTTP', function () {
  this.timeout(60_000);

  describe('pages, languages, sessions', () => {
    let web: TestConsole;
    before(async () => {
      web = await startTestConsole(mkdtempSync(path.join(tmpdir(), 'mailmoat-console-')));
    });
    after(() => web.close());

    it('sends the strict CSP and the other protective headers on every page; pages need a session', async () => {
      const client = new ConsoleClient(web.url);
      const login = await client.get('/login');
      assert.equal(login.status, 200);
      const csp = login.headers.get('content-security-policy') ?? '';
      for (const directive of [
        "default-src 'none'",
        "script-src 'none'",
        "img-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
      ]) {
        assert.ok(csp.includes(directive), `${directive} in ${csp}`);
      }
      assert.equal(login.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(login.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(login.headers.get('cache-control'), 'no-store');
      const quarantine = await client.get('/quarantine?state=all');
      assert.equal(quarantine.status, 303);
      assert.equal(quarantine.headers.get('location'), '/login?next=%2Fquarantine%3Fstate%3Dall');
      const post = await client.post('/quarantine/act', { action: 'delete', confirm: 'yes', id: '01J9Z3K4M5N6P7Q8R9S0T1V2W3' }, login.body);
      assert.equal(post.status, 401, 'no session: no action, whatever the token');
    });

    it('sets an HttpOnly, SameSite=Strict, signed session cookie; a tampered one signs nobody in', async () => {
      const client = new ConsoleClient(web.url);
      const login = await client.get('/login');
      const r = await client.request('POST', '/login', { _csrf: csrfToken(login.body), user: 'admin', password: 'correct horse battery staple' });
      const cookie = r.headers.getSetCookie().find((c) => c.startsWith('mm_session='));
      assert.ok(cookie);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      assert.match(cookie, /Max-Age=28800/);
      assert.equal((await client.get('/quarantine')).status, 200);
      const value = decodeURIComponent(client.cookie('mm_session')!);
      const forged = value.replace(/^admin\|/, 'auditor|');
      client.setCookie('mm_session', encodeURIComponent(forged));
      assert.equal((await client.get('/quarantine')).status, 303, 'a changed cookie fails its signature');
    });

    it('ends a session when the user is removed or their password changes', async () => {
      const users = new UserFile(web.policy.console.users);
      await users.set('dave', 'admin', 'first password 123');
      const client = new ConsoleClient(web.url);
      await client.signIn('dave', 'first password 123');
      assert.equal((await client.get('/quarantine')).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await users.set('dave', 'admin', 'second password 456');
      assert.equal((await client.get('/quarantine')).status, 303, 'the old session ended with the new password');
      await client.signIn('dave', 'second password 456');
      users.remove('dave');
      assert.equal((await client.get('/quarantine')).status, 303, 'a removed user is signed out');
    });

    it('speaks Japanese to a browser that asks for it, and remembers the switch to English', async () => {
      const ja = new ConsoleClient(web.url, { 'accept-language': 'ja-JP,ja;q=0.9,en;q=0.5' });
      const login = await ja.get('/login');
      assert.match(login.body, /<html lang="ja">/);
      assert.match(login.body, /サインイン/);
      const switched = await ja.get('/login?lang=en');
      assert.match(switched.body, /<html lang="en">/);
      assert.match(switched.body, /Sign in/);
      assert.match((await ja.get('/login')).body, /<html lang="en">/, 'the choice is kept in a cookie');
      const en = new ConsoleClient(web.url, { 'accept-language': 'de-DE, en;q=0.3' });
      assert.match((await en.get('/login')).body, /<html lang="en">/);
    });
  });

  describe('the quarantine list', () => {
    let web: TestConsole;
    let client: ConsoleClient;
    const ids: string[] = [];
    const now = Date.now();
    before(async () => {
      web = await startTestConsole(mkdtempSync(path.join(tmpdir(), 'mailmoat-console-list-')));
      // 130 items, one an hour back from now: every third from another domain, every fifth a macro
      for (let i = 129; i >= 0; i--) {
        ids.push(
          await putItem(web.store, now - i * HOUR, {
            from: i % 3 === 0 ? `mallory${i}@bad.test` : `alice${i}@partner.test`,
            to: [i % 2 ? 'bob@internal.test' : 'carol@internal.test'],
            symbol: i % 5 === 0 ? 'OFFICE_MACRO' : 'SUBJECT_HOLD',
            subject: `item ${i}`,
          }),
        );
      }
      client = new ConsoleClient(web.url);
      await client.signIn('admin');
    });
    after(() => web.close());

    it('pages newest first, 50 at a time, with older and newer links', async () => {
      const first = await client.get('/quarantine');
      assert.match(first.body, /130 messages match/);
      assert.deepEqual(rowIds(first.body), ids.slice(-50).reverse());
      const older = /href="(\/quarantine\?before=[0-9A-Z]{26})"/.exec(first.body)?.[1];
      assert.ok(older);
      const second = await client.get(older.replaceAll('&amp;', '&'));
      assert.deepEqual(rowIds(second.body), ids.slice(-100, -50).reverse());
      const third = await client.get(/href="(\/quarantine\?before=[0-9A-Z]{26})"/.exec(second.body)![1]);
      assert.deepEqual(rowIds(third.body), ids.slice(0, 30).reverse());
      assert.doesNotMatch(third.body, /Older →/, 'no older page after the oldest');
      const newer = /href="(\/quarantine\?after=[0-9A-Z]{26})"/.exec(third.body)?.[1];
      assert.deepEqual(rowIds((await client.get(newer!)).body), ids.slice(30, 80).reverse());
    });

    it('filters by symbol, sender domain, recipient, time and state, and keeps the filter while paging', async () => {
      const macro = await client.get('/quarantine?symbol=office_macro');
      assert.match(macro.body, /26 messages match/);
      assert.ok(
        rowIds(macro.body).every((id) => ids.indexOf(id) % 5 === 4),
        'only every fifth item (i % 5 == 0 counted from the newest)',
      );
      assert.match((await client.get('/quarantine?sender=%40bad.test')).body, /44 messages match/);
      assert.match((await client.get('/quarantine?recipient=carol%40internal.test&sender=%40bad.test')).body, /22 messages match/);
      const day = await client.get('/quarantine?since=24h');
      assert.match(day.body, /2[45] messages match/);
      const paged = await client.get('/quarantine?sender=%40partner.test');
      assert.match(paged.body, /86 messages match/);
      assert.match(paged.body, /href="\/quarantine\?sender=%40partner.test&amp;state=held&amp;before=|href="\/quarantine\?sender=%40partner.test&amp;before=/);
      const bad = await client.get('/quarantine?since=yesterday');
      assert.equal(bad.status, 400);
      assert.match(bad.body, /Received within.*expected 30m, 12h, 2d, 1w/);
    });

    it('sees a change made elsewhere (another node, the CLI) through the audit log', async () => {
      assert.match((await client.get('/quarantine?state=deleted')).body, /0 messages match/);
      // as `mailmoat quarantine delete` on another node would: the same code, a store of its own
      await deleteItem(new QuarantineStore(web.store.dir), ids[0], { operator: 'cli-user' });
      const deleted = await client.get('/quarantine?state=deleted');
      assert.match(deleted.body, /1 messages match/);
      assert.deepEqual(rowIds(deleted.body), [ids[0]]);
      assert.match((await client.get('/quarantine')).body, /129 messages match/);
      const added = await putItem(web.store, now + 1000, { from: 'new@partner.test', to: ['bob@internal.test'], symbol: 'SUBJECT_HOLD', subject: 'new' });
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(rowIds((await client.get('/quarantine')).body)[0], added, 'a new item is listed first');
    });
  });

  describe('actions against a real downstream', () => {
    let rig: ConsoleRig;
    let client: ConsoleClient;
    const message = (subject: string) => Buffer.from(`From: alice@internal.test\r\nSubject: ${subject}\r\n\r\nbody\r\n`);
    before(async () => {
      rig = await startConsoleRig();
      client = new ConsoleClient(rig.console.url);
      await client.signIn('admin');
    });
    after(() => rig.close());

    it('the confirmation step changes nothing; the confirmed bulk release delivers each selected item once', async () => {
      const a = await rig.hold(message('hold bulk a'));
      const b = await rig.hold(message('hold bulk b'));
      const c = await rig.hold(message('hold bulk c'));
      const before = rig.sink.messages.length;
      const list = await client.get('/quarantine');
      const confirm = await client.post('/quarantine/confirm', { action: 'release', id: [a, b] }, list.body);
      assert.equal(confirm.status, 200);
      assert.match(confirm.body, /Release these messages\?/);
      assert.match(confirm.body, /hold bulk a/);
      assert.doesNotMatch(confirm.body, /hold bulk c/);
      assert.equal(rig.sink.messages.length, before, 'nothing delivered by the confirmation page');
      assert.equal((await rig.console.store.get(a)).state, 'held');
      const done = await client.post('/quarantine/act', { action: 'release', confirm: 'yes', id: [a, b] }, confirm.body);
      assert.equal(done.status, 200);
      assert.equal((done.body.match(/<td class="nowrap result">released<\/td>/g) ?? []).length, 2, done.body);
      assert.equal(rig.sink.messages.length, before + 2);
      assert.equal((await rig.console.store.get(a)).state, 'released');
      assert.equal((await rig.console.store.get(c)).state, 'held');
      const again = await client.post('/quarantine/act', { action: 'release', confirm: 'yes', id: [a] }, done.body);
      assert.match(again.body, /refused.*already released/s);
      assert.equal(rig.sink.messages.length, before + 2, 'once only');
    });

    it('releases to the chosen recipients only', async () => {
      const id = await rig.hold(message('hold partial'));
      const before = rig.sink.messages.length;
      const item = await client.get(`/quarantine/${id}`);
      const confirm = await client.post('/quarantine/confirm', { action: 'release', id }, item.body);
      assert.match(confirm.body, /name="rcpt" value="bob@outside.test" checked/);
      assert.match(confirm.body, /name="rcpt" value="carol@outside.test" checked/);
      await client.post('/quarantine/act', { action: 'release', confirm: 'yes', id, rcpt: 'carol@outside.test' }, confirm.body);
      assert.equal(rig.sink.messages.length, before + 1);
      assert.deepEqual(rig.sink.messages.at(-1)!.rcptLines, ['RCPT TO:<carol@outside.test>']);
      const history = (await rig.console.store.get(id)).history.at(-1)!;
      assert.equal(history.event, 'released');
      assert.equal(history.by, 'admin');
      assert.deepEqual(history.recipients, ['carol@outside.test']);
    });

    it('deletes: the bytes go, the record stays marked deleted, the item page says so', async () => {
      const id = await rig.hold(message('hold delete'));
      const item = await client.get(`/quarantine/${id}`);
      const confirm = await client.post('/quarantine/confirm', { action: 'delete', id }, item.body);
      assert.match(confirm.body, /Delete these messages\?/);
      const done = await client.post('/quarantine/act', { action: 'delete', confirm: 'yes', id }, confirm.body);
      assert.match(done.body, /deleted/);
      assert.equal(existsSync(rig.console.store.emlFile(id)), false);
      assert.equal((await rig.console.store.get(id)).state, 'deleted');
      assert.match((await client.get(`/quarantine/${id}`)).body, /The message file is gone/);
    });

    it('acts on every held item a filter matches (release-matching), after the same confirmation', async () => {
      const x = await rig.hold(message('hold matching'), ['RCPT TO:<zed@matching.test>']);
      const y = await rig.hold(message('hold matching'), ['RCPT TO:<zed@matching.test>']);
      const before = rig.sink.messages.length;
      const list = await client.get('/quarantine?recipient=%40matching.test');
      assert.match(list.body, /2 messages match/);
      assert.match(list.body, /Release all 2…/);
      const confirm = await client.post('/quarantine/confirm', { action: 'release-matching', f_recipient: '@matching.test' }, list.body);
      assert.match(confirm.body, new RegExp(`value="${x}"`));
      assert.match(confirm.body, new RegExp(`value="${y}"`));
      assert.equal(rig.sink.messages.length, before);
      await client.post('/quarantine/act', { action: 'release', confirm: 'yes', id: [x, y] }, confirm.body);
      assert.equal(rig.sink.messages.length, before + 2);
    });

    it('an unknown or malformed id is a clear error, not a crash', async () => {
      assert.equal((await client.get('/quarantine/01J9Z3K4M5N6P7Q8R9S0T1V2W3')).status, 404);
      assert.equal((await client.get('/quarantine/..%2F..%2Fetc%2Fpasswd')).status, 404);
      const list = await client.get('/quarantine');
      const bad = await client.post('/quarantine/confirm', { action: 'release', id: '../../x' }, list.body);
      assert.equal(bad.status, 400);
      assert.match(bad.body, /invalid quarantine id/);
    });
  });

  describe('senders and the overview (the gateway and the console sharing the in-memory state)', () => {
    let rig: ConsoleRig;
    let client: ConsoleClient;
    before(async () => {
      rig = await startConsoleRig();
      client = new ConsoleClient(rig.console.url);
      await client.signIn('admin');
      for (let i = 0; i < 3; i++) {
        const r = await transaction(
          rig.gw.port,
          MAIL,
          ['RCPT TO:<bob@outside.test>'],
          Buffer.from(`From: alice@internal.test\r\nSubject: hello ${i}\r\n\r\nhi\r\n`),
        );
        assert.match(text(r.data), /^250 /);
      }
      await rig.hold(Buffer.from('From: alice@internal.test\r\nSubject: hold this\r\n\r\nhi\r\n'));
    });
    after(() => rig.close());

    it('lists the top outbound senders and shows one sender’s counters', async () => {
      const top = await client.get('/senders?window=3600000&by=messages');
      top.body = flat(top.body);
      assert.equal(top.status, 200);
      assert.match(top.body, /sender:alice@internal\.test/);
      const row =
        /<tr><td class="addr"><a href="\/senders\/show\?addr=alice%40internal.test">sender:alice@internal.test<\/a><\/td><td>(\d+)<\/td><td>(\d+)<\/td>/.exec(
          top.body,
        );
      assert.ok(row, top.body);
      assert.equal(row[1], '4', 'messages in the last hour');
      assert.equal(row[2], '2', 'distinct external recipients');
      const show = flat((await client.get('/senders/show?addr=alice%40internal.test')).body);
      assert.match(show, /Baseline: /);
      assert.match(show, /<td>1h<\/td><td>4<\/td><td>2<\/td>/);
    });

    it('suspends a sender (the gateway then refuses it) and lifts the suspension, each confirmed', async () => {
      const show = await client.get('/senders/show?addr=alice%40internal.test');
      const confirm = await client.post('/senders/confirm', { action: 'suspend', addr: 'alice@internal.test' }, show.body);
      assert.match(confirm.body, /Suspend alice@internal\.test\?/);
      const mail = async () => {
        const smtp = await connect(rig.gw.port);
        try {
          return await smtp.command(MAIL);
        } finally {
          await smtp.quit();
        }
      };
      assert.equal((await mail()).code, 250, 'the confirmation page suspends nothing');
      const done = await client.post('/senders/act', { action: 'suspend', addr: 'alice@internal.test', reason: 'infected PC', confirm: 'yes' }, confirm.body);
      assert.match(done.body, /Done: sender:alice@internal\.test, from:alice@internal\.test/);
      assert.ok((await mail()).code >= 400, 'the gateway refuses the suspended sender');
      const shown = await client.get('/senders/show?addr=alice%40internal.test');
      assert.match(shown.body, /suspended by MANUAL/);
      assert.match(shown.body, /admin: infected PC/);
      const lift = await client.post('/senders/act', { action: 'unsuspend', addr: 'alice@internal.test', confirm: 'yes' }, shown.body);
      assert.match(lift.body, /Done: sender:alice@internal\.test/);
      assert.equal((await mail()).code, 250);
    });

    it('draws messages per hour by action, the top symbols and quarantined per day', async () => {
      const overview = await client.get('/');
      assert.equal(overview.status, 200);
      overview.body = flat(overview.body);
      const perHour = /<section class="card chart" id="per-hour">(.*?)<\/section>/s.exec(overview.body)?.[1] ?? '';
      assert.match(perHour, /<rect [^>]*fill="#4c9a6a"><title>\d\d relay: 3<\/title>/);
      assert.match(perHour, /<title>\d\d quarantine: 1<\/title>/);
      const symbols = /<section class="card chart" id="top-symbols">(.*?)<\/section>/s.exec(overview.body)?.[1] ?? '';
      assert.match(symbols, /<title>SUBJECT_HOLD: 1<\/title>/);
      const perDay = /<section class="card chart" id="per-day">(.*?)<\/section>/s.exec(overview.body)?.[1] ?? '';
      assert.match(perDay, /quarantine: 1<\/title>/);
      assert.match(overview.body, /1 messages held now/);
    });
  });
});
