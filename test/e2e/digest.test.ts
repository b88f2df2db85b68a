// The recipients' digest end to end: messages held through SMTP, `mailmoat quarantine digest` run as
// a process, each internal recipient getting one mail at a real downstream SMTP server with links
// whose tokens open their own items only; a second run lists only what is new; `serve` sends on
// quarantine.digest.schedule. Then what a recipient does behind a link: request a release (recorded,
// the admin mailed), release their own copy (delivered to them only, once), never someone else's,
// within their limit.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { openRecipientLink } from '../../src/console/recipient-link.js';
import { createRecipientToken, readTokenKey, verifyRecipientToken } from '../../src/console/tokens.js';
import { loadPolicy } from '../../src/policy/load.js';
import { pendingRequests, RecipientActionError, releaseOwnCopy, requestRelease, type RecipientContext } from '../../src/quarantine/requests.js';
import { QuarantineStore } from '../../src/quarantine/store.js';
import { text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { capturedLogger } from '../helpers/logs.js';
import { serve } from '../helpers/served.js';
import { startSink, type ReceivedMessage, type Sink } from '../helpers/sink.js';
import { mailmoat } from '../helpers/cli.js';

const RULE = 'rules.headers=[{symbol: SUBJECT_HOLD, header: Subject, match: "^hold", score: 4, action: quarantine}]';
const INTERNAL = 'network.internalDomains=[example.jp, example.com]';

const cli = (args: string[]) => mailmoat(['quarantine', ...args]);

interface Digest {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** tokens of the links in the HTML part */
  tokens: string[];
}

async function readDigest(m: ReceivedMessage): Promise<Digest> {
  const parsed = await simpleParser(m.bytes);
  const html = typeof parsed.html === 'string' ? parsed.html : '';
  const tokens = [...html.matchAll(/href="https:\/\/mail\.example\.jp\/mm\/r\/([^"]+)"/g)].map((x) => x[1]);
  const textTokens = [...(parsed.text ?? '').matchAll(/https:\/\/mail\.example\.jp\/mm\/r\/(\S+)/g)].map((x) => x[1]);
  assert.deepEqual(textTokens, tokens, 'the text part links the same items');
  assert.equal(m.rcptLines.length, 1, 'one recipient per digest');
  return { to: /<(.*)>/.exec(m.rcptLines[0])![1], subject: parsed.subject ?? '', text: parsed.text ?? '', html, tokens };
}

describe('recipient digests end to end', function () {
  this.timeout(180_000);
  let sink: Sink;
  let gw: RunningGateway;
  let root: string;
  let dir: string;
  let keyFile: string;
  let policyFile: string;
  let p: string[];
  const held: Record<string, string> = {};

  async function hold(name: string, rcpts: string[], subject = `hold ${name}`): Promise<string> {
    const message = `From: Eve <eve@partner.test>\r\nTo: someone\r\nSubject: ${subject}\r\n\r\nbody ${name}\r\n`;
    const r = await transaction(
      gw.port,
      'MAIL FROM:<eve@partner.test>',
      rcpts.map((x) => `RCPT TO:<${x}>`),
      message,
    );
    const match = /quarantined as ([0-9A-Z]{26})$/.exec(text(r.data));
    assert.ok(match, text(r.data));
    held[name] = match[1];
    return match[1];
  }

  before(async () => {
    sink = await startSink();
    root = mkdtempSync(path.join(tmpdir(), 'mailmoat-digest-'));
    dir = path.join(root, 'quarantine');
    keyFile = path.join(root, 'link.key');
    gw = await startGateway(sink.port, [RULE, INTERNAL, `quarantine.dir=${dir}`]);
    policyFile = path.join(root, 'policy.yaml');
    writeFileSync(
      policyFile,
      [
        `downstream: { host: 127.0.0.1, port: ${sink.port}, starttls: off }`,
        'network: { internalDomains: [example.jp, example.com] }',
        'quarantine:',
        `  dir: ${JSON.stringify(dir)}`,
        '  notify: { from: mailmoat@example.com }',
        `  digest: { baseUrl: "https://mail.example.jp/mm/", keyFile: ${JSON.stringify(keyFile)}, languages: { example.jp: ja } }`,
        '',
      ].join('\n'),
    );
    p = ['--policy', policyFile];
  });

  after(async () => {
    await gw.close();
    await sink.close();
  });

  it('without a key file it says which file and how to make one; --init-key makes it (0600)', async () => {
    await hold('shared', ['sato@example.jp', 'suzuki@example.jp']);
    const none = await cli(['digest', ...p]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, new RegExp(`link key file ${keyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be read: ENOENT .*--init-key`));
    const made = await cli(['digest', '--init-key', ...p]);
    assert.equal(made.status, 0, made.stderr);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const again = await cli(['digest', '--init-key', ...p]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists/);
  });

  it('one mail per internal recipient listing only their items, with links that verify for their item and recipient only', async () => {
    await hold('sato-and-partner', ['sato@example.jp', 'partner@outside.test'], 'hold <b>bold</b> & "quoted"');
    await hold('bob', ['bob@example.com']);
    await hold('outside-only', ['partner@outside.test']);
    const before = sink.messages.length;

    const dry = await cli(['digest', '--dry-run', ...p]);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /^sato@example\.jp \(ja\): 2 held$/m);
    assert.match(dry.stdout, /dry run: 3 digests would be sent/);
    assert.equal(sink.messages.length, before, 'a dry run sends nothing');
    assert.ok(!existsSync(path.join(dir, 'digest.json')), 'and records nothing');

    const r = await cli(['digest', ...p]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /3 digests sent/);
    const mails = await Promise.all(sink.messages.slice(before).map(readDigest));
    assert.deepEqual(mails.map((m) => m.to).sort(), ['bob@example.com', 'sato@example.jp', 'suzuki@example.jp']);

    const key = await readTokenKey(keyFile);
    const expected: Record<string, string[]> = {
      'sato@example.jp': [held.shared, held['sato-and-partner']],
      'suzuki@example.jp': [held.shared],
      'bob@example.com': [held.bob],
    };
    for (const m of mails) {
      const claims = m.tokens.map((t) => verifyRecipientToken(key, t));
      assert.ok(
        claims.every((c) => c.status === 'ok' && c.recipient === m.to),
        JSON.stringify(claims),
      );
      assert.deepEqual(claims.map((c) => (c.status === 'ok' ? c.id : '')).sort(), expected[m.to].sort(), m.to);
      assert.ok(!m.text.includes(held['outside-only']) && !m.tokens.some((t) => t.includes(held['outside-only'])));
    }
    // the page behind a link opens the item for its recipient; a token whose recipient is not the item's opens nothing
    const store = new QuarantineStore(dir);
    const { policy } = loadPolicy(policyFile);
    const suzukiLink = await openRecipientLink(store, policy, key, mails.find((m) => m.to === 'suzuki@example.jp')!.tokens[0]);
    assert.ok(suzukiLink.status === 'ok' && suzukiLink.meta.id === held.shared && suzukiLink.recipient === 'suzuki@example.jp');
    assert.equal(suzukiLink.access.right, 'request');
    const forged = createRecipientToken(key, { id: held['sato-and-partner'], recipient: 'suzuki@example.jp', expiresAt: Date.now() + 60_000 });
    assert.deepEqual(await openRecipientLink(store, policy, key, forged), { status: 'not-found' });
    const outside = createRecipientToken(key, { id: held['sato-and-partner'], recipient: 'partner@outside.test', expiresAt: Date.now() + 60_000 });
    assert.deepEqual(await openRecipientLink(store, policy, key, outside), { status: 'not-found' });
    const later = await openRecipientLink(store, policy, key, mails[0].tokens[0], Date.now() + 8 * 86_400_000);
    assert.equal(later.status, 'expired', 'links expire after linkTtl (7d)');
    const sato = mails.find((m) => m.to === 'sato@example.jp')!;
    assert.match(sato.subject, /保留中のメール: 2 件/);
    assert.match(sato.html, /hold &lt;b&gt;bold&lt;\/b&gt; &amp; &quot;quoted&quot;/, 'message values are escaped in the HTML part');
    assert.ok(!sato.html.includes('<b>bold'));
    assert.match(sato.text, /管理者に解放を依頼する/);
    const bob = mails.find((m) => m.to === 'bob@example.com')!;
    assert.match(bob.subject, /^Held mail: 1 message for you$/);
    assert.match(bob.text, /Why: a rule of your organisation \(SUBJECT_HOLD\)/);
    assert.ok(!sink.messages.slice(before).some((m) => m.rcptLines.some((l) => l.includes('outside.test'))), 'nobody outside gets a digest');
    // the digest's envelope and headers
    const raw = sink.messages[before];
    assert.match(raw.mailLine, /^MAIL FROM:<mailmoat@example\.com>/);
    assert.match(raw.bytes.toString(), /^Auto-Submitted: auto-generated\r$/im);
  });

  it('a second run lists only the messages held since; a third finds nothing to send', async () => {
    await hold('new-for-sato', ['sato@example.jp']);
    const before = sink.messages.length;
    const r = await cli(['digest', ...p]);
    assert.equal(r.status, 0, r.stderr);
    const mails = await Promise.all(sink.messages.slice(before).map(readDigest));
    assert.deepEqual(
      mails.map((m) => m.to),
      ['sato@example.jp'],
    );
    const key = await readTokenKey(keyFile);
    assert.deepEqual(
      mails[0].tokens.map((t) => {
        const c = verifyRecipientToken(key, t);
        return c.status === 'ok' ? c.id : c.status;
      }),
      [held['new-for-sato']],
    );
    const third = await cli(['digest', ...p]);
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stdout, /^0 digests sent$/m);
    assert.equal(sink.messages.length, before + 1);
    // --since lists again what is still held, whatever was sent before
    const since = await cli(['digest', '--dry-run', '--since', '1h', ...p]);
    assert.match(since.stdout, /^sato@example\.jp \(ja\): 3 held$/m);
  });

  it('a digest the downstream refuses is reported (exit 1) and its messages come again next run', async () => {
    await hold('refused-once', ['tanaka@example.jp']);
    const refusing = await startSink({ rcpt: (a) => (a.startsWith('tanaka') ? [450, '4.2.1 Mailbox busy'] : undefined) });
    const refusingPolicy = path.join(root, 'refusing.yaml');
    writeFileSync(refusingPolicy, readFileSync(policyFile, 'utf8').replace(`port: ${sink.port}`, `port: ${refusing.port}`));
    try {
      const r = await cli(['digest', '--policy', refusingPolicy]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^tanaka@example\.jp: 1 held: NOT sent: .*4\.2\.1 Mailbox busy/m);
    } finally {
      await refusing.close();
    }
    const before = sink.messages.length;
    const again = await cli(['digest', ...p]);
    assert.equal(again.status, 0, again.stderr);
    const mails = await Promise.all(sink.messages.slice(before).map(readDigest));
    assert.deepEqual(
      mails.map((m) => m.to),
      ['tanaka@example.jp'],
    );
    assert.equal(mails[0].tokens.length, 1);
  });

  it('serve sends digests on quarantine.digest.schedule', async () => {
    const schedSink = await startSink();
    const schedDir = path.join(root, 'scheduled');
    const served = await serve(policyFile, schedSink.port, ['--set', RULE, '--set', `quarantine.dir=${schedDir}`, '--set', 'quarantine.digest.schedule=2s']);
    try {
      const r = await transaction(served.port, 'MAIL FROM:<eve@partner.test>', ['RCPT TO:<kato@example.com>'], 'Subject: hold scheduled\r\n\r\nx\r\n');
      assert.match(text(r.data), /quarantined as/);
      await served.waitFor((l) => l.event === 'digest' && l.recipient === 'kato@example.com' && l.status === 'sent');
      const mail = await readDigest(schedSink.messages.find((m) => m.rcptLines.some((l) => l.includes('kato@example.com')))!);
      assert.equal(mail.tokens.length, 1);
      // the next scheduled runs find nothing new for kato
      await served.waitFor((l) => l.event === 'digest_run' && l.recipients === 0);
      assert.equal(schedSink.messages.filter((m) => m.rcptLines.some((l) => l.includes('kato@example.com'))).length, 1);
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
      await schedSink.close();
    }
  });

  describe('what a recipient does behind a link', () => {
    let ctx: RecipientContext;
    let logs: Record<string, unknown>[];

    before(() => {
      const { policy } = loadPolicy(policyFile, [
        'quarantine.rights.symbols.SUBJECT_HOLD=request',
        'quarantine.requests.admin=admin@example.com',
        'quarantine.requests.limit=3',
      ]);
      const captured = capturedLogger();
      logs = captured.logs;
      ctx = { store: new QuarantineStore(dir), policy, state: { kind: 'memory' }, log: captured.log };
    });

    it('a request is recorded on the item and in audit.log, and the admin is mailed; a second one is refused', async () => {
      const id = held['sato-and-partner'];
      const before = sink.messages.length;
      const result = await requestRelease(ctx, id, 'SATO@example.jp', { note: 'I expect this invoice\x1b[2J' });
      assert.equal(result.notified, 'admin@example.com');
      assert.deepEqual(
        pendingRequests(await ctx.store.get(id)).map((r) => [r.recipient, r.note]),
        [['sato@example.jp', 'I expect this invoice\\e[2J']],
      );
      const notice = sink.messages.slice(before);
      assert.equal(notice.length, 1);
      assert.deepEqual(notice[0].rcptLines, ['RCPT TO:<admin@example.com>']);
      const parsed = await simpleParser(notice[0].bytes);
      assert.match(parsed.subject ?? '', /Release requested by sato@example\.jp/);
      assert.match(parsed.text ?? '', new RegExp(`mailmoat quarantine release ${id} --to sato@example\\.jp`));
      const audit = readFileSync(path.join(dir, 'audit.log'), 'utf8');
      assert.match(audit, new RegExp(`"action":"release-request","id":"${id}","operator":"recipient:sato@example.jp","result":"requested"`));
      await assert.rejects(requestRelease(ctx, id, 'sato@example.jp'), (e: Error) => e instanceof RecipientActionError && e.kind === 'already-requested');
      assert.equal(sink.messages.length, before + 1);
      assert.ok(logs.some((l) => l.event === 'release_requested' && l.id === id));
    });

    it('declined with the CLI: the recipient is told in their language with the reason, the request is answered, asking again is refused', async () => {
      const id = held['sato-and-partner']; // sato asked for it in the test before
      assert.equal(pendingRequests(await ctx.store.get(id)).length, 1);
      const before = sink.messages.length;
      const r = await cli(['decline', id, '--recipient', 'sato@example.jp', '--reason', 'Not a partner of ours.', '--operator', 'alice-admin', ...p]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`${id}: request of sato@example\\.jp declined; sato@example\\.jp told by mail`));
      const notice = sink.messages.slice(before);
      assert.deepEqual(
        notice.map((m) => m.rcptLines),
        [['RCPT TO:<sato@example.jp>']],
      );
      const parsed = await simpleParser(notice[0].bytes);
      assert.match(parsed.subject ?? '', /却下/, 'example.jp reads Japanese (quarantine.digest.languages)');
      assert.match(parsed.text ?? '', /理由: Not a partner of ours\./);
      const meta = await ctx.store.get(id);
      assert.equal(meta.state, 'held');
      assert.deepEqual(pendingRequests(meta), []);
      assert.match(
        readFileSync(path.join(dir, 'audit.log'), 'utf8'),
        new RegExp(`"action":"release-decline","id":"${id}","operator":"alice-admin","result":"declined"`),
      );
      await assert.rejects(requestRelease(ctx, id, 'sato@example.jp'), (e: Error) => e instanceof RecipientActionError && e.kind === 'declined');
      const twice = await cli(['decline', id, '--recipient', 'sato@example.jp', ...p]);
      assert.equal(twice.status, 1, twice.stdout);
      assert.match(twice.stderr, /no pending release request from sato@example\.jp/);
      assert.equal(sink.messages.length, before + 1, 'told once');
    });

    it("never on another recipient's item: someone not its recipient, or outside, is refused and nothing changes", async () => {
      const id = held['sato-and-partner'];
      const history = (await ctx.store.get(id)).history.length;
      for (const who of ['suzuki@example.jp', 'partner@outside.test', 'bob@example.com'])
        await assert.rejects(requestRelease(ctx, id, who), (e: Error) => e instanceof RecipientActionError && e.kind === 'not-recipient', who);
      await assert.rejects(releaseOwnCopy(ctx, id, 'suzuki@example.jp'), (e: Error) => e instanceof RecipientActionError && e.kind === 'not-recipient');
      assert.equal((await ctx.store.get(id)).history.length, history);
    });

    it('a release needs the release category: on request-only items it is refused, nothing delivered', async () => {
      const before = sink.messages.length;
      await assert.rejects(releaseOwnCopy(ctx, held.shared, 'sato@example.jp'), (e: Error) => e instanceof RecipientActionError && e.kind === 'not-allowed');
      assert.equal(sink.messages.length, before);
    });

    it('where allowed, each recipient releases their own copy once, through the release of the CLI', async () => {
      const releasing: RecipientContext = {
        ...ctx,
        state: { kind: 'memory' },
        policy: loadPolicy(policyFile, ['quarantine.rights.symbols.SUBJECT_HOLD=release']).policy,
      };
      const id = held.shared;
      const before = sink.messages.length;
      const first = await releaseOwnCopy(releasing, id, 'sato@example.jp');
      assert.equal(first.status, 'released');
      assert.deepEqual(sink.messages.at(-1)!.rcptLines, ['RCPT TO:<sato@example.jp>'], 'their copy only');
      assert.match(sink.messages.at(-1)!.bytes.toString(), /^X-Mailmoat-Released: id=[0-9A-Z]{26}; by=recipient:sato@example\.jp;/);
      await assert.rejects(releaseOwnCopy(releasing, id, 'sato@example.jp'), (e: Error) => e instanceof RecipientActionError && e.kind === 'not-held');
      // the other recipient's copy is still theirs to release, once
      const second = await releaseOwnCopy(releasing, id, 'suzuki@example.jp');
      assert.equal(second.status, 'released');
      assert.deepEqual(sink.messages.at(-1)!.rcptLines, ['RCPT TO:<suzuki@example.jp>']);
      assert.equal(sink.messages.length, before + 2);
      // the CLI sees the item released to both; a plain release again is refused
      const again = await cli(['release', id, ...p]);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /already released/);
      const audit = readFileSync(path.join(dir, 'audit.log'), 'utf8');
      assert.match(audit, new RegExp(`"action":"release","id":"${id}","operator":"recipient:suzuki@example.jp","result":"released"`));
    });

    it('requests and releases are limited per recipient', async () => {
      const limited: RecipientContext = { ...ctx, state: { kind: 'memory' } };
      const ids = [
        await hold('l1', ['ito@example.jp']),
        await hold('l2', ['ito@example.jp']),
        await hold('l3', ['ito@example.jp']),
        await hold('l4', ['ito@example.jp']),
      ];
      for (const id of ids.slice(0, 3)) await requestRelease(limited, id, 'ito@example.jp');
      await assert.rejects(
        requestRelease(limited, ids[3], 'ito@example.jp'),
        (e: Error) => e instanceof RecipientActionError && e.kind === 'rate-limited' && /quarantine\.requests\.limit/.test(e.message),
      );
      assert.deepEqual(pendingRequests(await ctx.store.get(ids[3])), []);
    });
  });
});
