// What a recipient may do with a held message (quarantine.rights), the per-recipient action limit on
// both state backends, when a scheduled digest is due, and how a digest mail shows what a message's
// sender wrote (escaped, in the recipient's language).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ulid } from 'ulid';
import { verifyRecipientToken } from '../../src/console/tokens.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/schema.js';
import { composeDigest, planDigests } from '../../src/quarantine/digest.js';
import { nextDigestAt } from '../../src/quarantine/digest-schedule.js';
import { explainSymbol, languageFor } from '../../src/quarantine/digest-text.js';
import { itemRight, recipientAccess, rightOfSymbol } from '../../src/quarantine/rights.js';
import { ulidTime, type QuarantineMetadata } from '../../src/quarantine/store.js';
import { MemoryActionLimiter, RedisActionLimiter, type ActionLimiter } from '../../src/state/action-limit.js';
import { removePrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';

const INTERNAL = 'network: { internalDomains: [example.jp, example.com] }\n';

function policyOf(text = ''): Policy {
  return parsePolicy(INTERNAL + text, 'p.yaml').policy;
}

function item(
  symbols: string[],
  options: { rcpt?: string[]; state?: QuarantineMetadata['state']; id?: string; from?: string; subject?: string } = {},
): QuarantineMetadata {
  const id = options.id ?? ulid();
  const rcpt = options.rcpt ?? ['sato@example.jp'];
  return {
    id,
    receivedAt: new Date(ulidTime(id)).toISOString(),
    client: { address: '192.0.2.1', helo: 'x' },
    envelope: { mailFrom: 'eve@evil.test', mailLine: 'MAIL FROM:<eve@evil.test>', rcptTo: rcpt, rcptLines: rcpt.map((r) => `RCPT TO:<${r}>`) },
    size: 10,
    sha256: '0'.repeat(64),
    headers: { from: options.from ?? 'Eve <eve@evil.test>', subject: options.subject ?? 'Invoice' },
    findings: symbols.map((symbol) => ({ symbol, score: 5 })),
    verdict: { action: 'quarantine', score: 5, reason: 'x' },
    policyVersion: 'v',
    state: options.state ?? 'held',
    history: [{ at: new Date().toISOString(), event: 'quarantined', by: 'gateway' }],
  };
}

describe('recipient rights', () => {
  const policy = policyOf();

  it('defaults: macros and dangerous files admin-only, spoofing and unscannable archives on request', () => {
    for (const s of ['OFFICE_MACRO', 'OFFICE_MACRO_AUTOEXEC', 'OFFICE_XLM_MACRO', 'FILE_EXECUTABLE', 'FILE_SHORTCUT', 'HTML_SMUGGLING'])
      assert.equal(rightOfSymbol(policy, s), 'none', s);
    for (const s of [
      'SPOOF_HIJACK',
      'SPOOF_SUSPECT',
      'SPOOF_THREAD_OUTSIDER',
      'ARCHIVE_ENCRYPTED_UNSCANNABLE',
      'OFFICE_ENCRYPTED_UNSCANNABLE',
      'AUTH_DMARC_REJECT',
    ])
      assert.equal(rightOfSymbol(policy, s), 'request', s);
    assert.equal(rightOfSymbol(policy, 'SUBJECT_HOLD'), 'request', 'a rule the defaults do not name: the default');
  });

  it('the strictest category over the findings decides, and names them', () => {
    assert.deepEqual(itemRight(policy, item(['SPOOF_HIJACK', 'OFFICE_MACRO'])), { right: 'none', because: [{ symbol: 'OFFICE_MACRO', right: 'none' }] });
    assert.equal(itemRight(policy, item(['SPOOF_HIJACK', 'ARCHIVE_ENCRYPTED_UNSCANNABLE'])).right, 'request');
    // excepted and informational findings do not make it stricter
    const p = policyOf('quarantine: { rights: { default: release, symbols: { AUTH_DMARC_PASS: none } } }\n');
    const meta = item(['SUBJECT_HOLD']);
    meta.findings.push({ symbol: 'AUTH_DMARC_PASS', score: 0 }, { symbol: 'OFFICE_MACRO', score: 10, excepted: 'partner macro' });
    assert.equal(itemRight(p, meta).right, 'release');
  });

  it('set per symbol, per family (longest prefix wins) and per action in the policy', () => {
    const p = policyOf(
      'quarantine: { rights: { default: none, symbols: { SUBJECT_HOLD: release, "SPOOF_*": none, "SPOOF_FAKE_*": release }, actions: { tag: release } } }\n' +
        'rules: { headers: [{ symbol: TAGGED_RULE, header: Subject, match: x, action: tag }] }\n',
    );
    assert.equal(rightOfSymbol(p, 'SUBJECT_HOLD'), 'release');
    assert.equal(rightOfSymbol(p, 'SPOOF_HIJACK'), 'none');
    assert.equal(rightOfSymbol(p, 'SPOOF_FAKE_REPLY'), 'release');
    assert.equal(rightOfSymbol(p, 'OFFICE_MACRO'), 'none', 'built-in entries stay');
    assert.equal(rightOfSymbol(p, 'OFFICE_VBA_PROJECT_EMPTY'), 'release', 'its action is tag');
    assert.equal(rightOfSymbol(p, 'SOMETHING_ELSE'), 'none', 'the default');
  });

  it('a bad category or key is refused with its place', () => {
    assert.throws(() => parsePolicy('quarantine: { rights: { symbols: { OFFICE_MACRO: allow } } }\n', 'p.yaml'), /OFFICE_MACRO/);
    assert.throws(
      () => parsePolicy('quarantine: { rights: { symbols: { "office*": none } } }\n', 'p.yaml'),
      /p\.yaml:1:\d+: quarantine\.rights\.symbols\.office\*: Invalid key/,
    );
  });

  it('only an internal envelope recipient of the item may act on it, and only on a copy still held', () => {
    const meta = item(['SPOOF_HIJACK'], { rcpt: ['Sato@Example.jp', 'partner@outside.test'] });
    assert.deepEqual(recipientAccess(policy, meta, 'sato@example.jp'), {
      recipient: 'Sato@Example.jp',
      right: 'request',
      because: [{ symbol: 'SPOOF_HIJACK', right: 'request' }],
      actionable: true,
    });
    assert.equal(recipientAccess(policy, meta, 'suzuki@example.jp').reason, 'not-recipient');
    assert.equal(recipientAccess(policy, meta, 'suzuki@example.jp').right, 'none');
    assert.equal(recipientAccess(policy, meta, 'partner@outside.test').reason, 'not-recipient', 'outside recipients never');
    meta.history.push({ at: '', event: 'released', by: 'admin', recipients: ['sato@example.jp'] });
    meta.state = 'released';
    assert.equal(recipientAccess(policy, meta, 'SATO@example.jp').reason, 'released');
    assert.equal(recipientAccess(policy, { ...meta, state: 'deleted' }, 'sato@example.jp').reason, 'deleted');
  });
});

function limiterSuite(name: string, make: (now: () => number) => Promise<{ limiter: ActionLimiter; done: () => Promise<void> }>) {
  describe(`recipient action limit: ${name}`, () => {
    let clock = 1_700_000_000_000;
    let env: Awaited<ReturnType<typeof make>>;
    beforeEach(async () => (env = await make(() => clock)));
    afterEach(async () => env.done());

    it('allows `limit` actions per window per recipient (any case), then refuses until the window ends', async () => {
      const takes = [];
      for (let i = 0; i < 4; i++) takes.push(await env.limiter.take('Sato@example.jp', 3, 2000));
      assert.deepEqual(
        takes.map((t) => t.allowed),
        [true, true, true, false],
      );
      assert.equal(takes[3].count, 3);
      assert.ok(takes[3].resetInMs > 0 && takes[3].resetInMs <= 2000);
      assert.equal((await env.limiter.take('suzuki@example.jp', 3, 2000)).allowed, true, 'another recipient has a count of their own');
      assert.equal((await env.limiter.take('sato@EXAMPLE.jp', 3, 2000)).allowed, false);
      clock += 2001;
      if (name === 'redis') await new Promise((r) => setTimeout(r, 2100));
      assert.equal((await env.limiter.take('sato@example.jp', 3, 2000)).allowed, true);
    });
  });
}

limiterSuite('memory', async (now) => ({ limiter: new MemoryActionLimiter(1000, now), done: async () => undefined }));
limiterSuite('redis', async () => {
  const redis = await testRedis();
  const prefix = uniquePrefix();
  return {
    limiter: new RedisActionLimiter(redis, prefix),
    done: async () => {
      await removePrefix(redis, prefix);
      redis.disconnect();
    },
  };
});

describe('digest schedule', () => {
  it('every: due that long after the last run, at once when never run', () => {
    assert.equal(nextDigestAt({ every: 3_600_000 }, undefined, 1000), 1000);
    assert.equal(nextDigestAt({ every: 3_600_000 }, 5000, 6000), 3_605_000);
  });

  it('daily: the first such local time after the last run; when never run, the next one from now', () => {
    const at = (h: number, m: number, day = 10) => new Date(2025, 2, day, h, m).getTime();
    assert.equal(nextDigestAt({ daily: '08:30' }, at(8, 30), at(9, 0)), at(8, 30, 11));
    assert.equal(nextDigestAt({ daily: '08:30' }, at(7, 0), at(7, 5)), at(8, 30));
    assert.equal(nextDigestAt({ daily: '08:30' }, at(8, 30, 7), at(9, 0)), at(8, 30, 8), 'a missed run is due at once');
    assert.equal(nextDigestAt({ daily: '08:30' }, undefined, at(9, 0)), at(8, 30, 11));
    assert.equal(nextDigestAt({ daily: '08:30' }, undefined, at(8, 0)), at(8, 30));
  });

  it('the policy takes a duration or HH:MM, nothing else', () => {
    assert.deepEqual(policyOf('quarantine: { digest: { schedule: 24h } }\n').quarantine.digest.schedule, { every: 86_400_000 });
    assert.deepEqual(policyOf('quarantine: { digest: { schedule: "08:30" } }\n').quarantine.digest.schedule, { daily: '08:30' });
    assert.throws(() => policyOf('quarantine: { digest: { schedule: "25:00" } }\n'), /schedule/);
  });
});

describe('digest mail', () => {
  const key = randomBytes(32);
  const settings = { key, baseUrl: 'https://mail.example.jp/mm' };

  it('escapes what the sender wrote in the HTML and text parts', () => {
    const policy = policyOf();
    const meta = item(['SPOOF_HIJACK'], {
      from: '"<img src=x onerror=alert(1)>" <a@evil.test>',
      subject: 'Re: <script>alert("x")</script> & \u202egnp.exe\x1b[31m',
    });
    const [digest] = planDigests([meta], policy, { recipients: {} }, settings, Date.now() + 1000);
    const mail = composeDigest(digest, Date.now());
    assert.ok(!mail.html.includes('<script>') && !mail.html.includes('<img'), mail.html);
    assert.match(mail.html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; \\u\{202e\}gnp\.exe\\e\[31m/);
    assert.match(mail.html, /&quot;&lt;img src=x onerror=alert\(1\)&gt;&quot; &lt;a@evil\.test&gt;/);
    assert.ok(!mail.text.includes('\u202e') && !mail.text.includes('\x1b'));
    const link = /href="([^"]+)"/.exec(mail.html)![1];
    assert.match(link, /^https:\/\/mail\.example\.jp\/mm\/r\/[A-Za-z0-9._-]+$/);
    const check = verifyRecipientToken(key, link.split('/r/')[1]);
    assert.ok(check.status === 'ok' && check.id === meta.id && check.recipient === 'sato@example.jp');
  });

  it('speaks the recipient language: per domain, else the policy default; symbols in plain words', () => {
    const policy = policyOf('quarantine: { digest: { language: en, languages: { example.jp: ja } } }\n');
    assert.equal(languageFor(policy, 'sato@example.jp'), 'ja');
    assert.equal(languageFor(policy, 'sato@tokyo.example.jp'), 'ja');
    assert.equal(languageFor(policy, 'bob@example.com'), 'en');
    const [ja] = planDigests([item(['OFFICE_MACRO'])], policy, { recipients: {} }, settings, Date.now() + 1000);
    const mail = composeDigest(ja, Date.now());
    assert.match(mail.subject, /保留中のメール: 1 件/);
    assert.match(mail.text, /マクロ（開くと動くプログラム）を含む Office 文書/);
    assert.match(mail.text, /解放できるのは管理者だけです/);
    assert.equal(explainSymbol('SUBJECT_HOLD', 'en'), 'a rule of your organisation (SUBJECT_HOLD)');
    assert.equal(explainSymbol('FILE_SHORTCUT', 'en'), 'a shortcut file (.lnk, .url)');
  });

  it('lists for each internal recipient only their items received since their last digest', () => {
    const policy = policyOf();
    const t0 = Date.now() - 10_000;
    const old = item(['SPOOF_HIJACK'], { id: ulid(t0), rcpt: ['sato@example.jp', 'bob@example.com'] });
    const fresh = item(['SPOOF_HIJACK'], { id: ulid(t0 + 5000), rcpt: ['sato@example.jp', 'out@partner.test'] });
    const digests = planDigests([old, fresh], policy, { recipients: { 'sato@example.jp': t0 + 1000 } }, settings, Date.now());
    assert.deepEqual(
      digests.map((d) => [d.recipient, d.entries.map((e) => e.id)]),
      [
        ['bob@example.com', [old.id]],
        ['sato@example.jp', [fresh.id]],
      ],
    );
  });
});
