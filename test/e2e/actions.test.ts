// The actions beyond relay/defer/reject: quarantine (durable before 250), tag, and exceptions.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { startScripted } from '../helpers/scripted.js';
import { sha256 } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';
import { withRelay } from '../helpers/relay.js';
import { startDnsServer } from '../helpers/dns-server.js';
import type { QuarantineMetadata } from '../../src/quarantine/store.js';

const MAIL = 'MAIL FROM:<alice@internal.test> SIZE=500';
const RCPT = 'RCPT TO:<bob@outside.test> NOTIFY=FAILURE';
const rule = (action: string) => `rules.headers=[{symbol: SUBJECT_HOLD, header: Subject, match: "^hold", score: 4, action: ${action}}]`;

describe('actions', function () {
  it('quarantine: the message is on disk (bytes and metadata) before the 250, and nothing goes downstream', async () => {
    const scripted = await startScripted({});
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-q-'));
    const gw = await startGateway(scripted.port, [rule('quarantine'), `quarantine.dir=${dir}`]);
    try {
      const message = messages.dotLines().toString().replace('Subject: dots', 'Subject: hold me');
      const r = await transaction(gw.port, MAIL, [RCPT], message);
      const match = /^250 2\.0\.0 Ok: quarantined as ([0-9A-Z]{26})$/.exec(text(r.data));
      assert.ok(match, text(r.data));
      const id = match[1];
      assert.equal(sha256(readFileSync(path.join(dir, `${id}.eml`))), sha256(Buffer.from(message)));
      const meta = JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata;
      assert.equal(meta.id, id);
      assert.equal(meta.state, 'held');
      assert.equal(meta.sha256, sha256(Buffer.from(message)));
      assert.deepEqual(meta.envelope, { mailFrom: 'alice@internal.test', mailLine: MAIL, rcptTo: ['bob@outside.test'], rcptLines: [RCPT] });
      assert.equal(meta.verdict.action, 'quarantine');
      assert.equal(meta.findings[0].symbol, 'SUBJECT_HOLD');
      assert.equal(meta.client.address, '127.0.0.1');
      assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp files left');
      assert.ok(!scripted.commands.includes('DATA'));
      assert.ok(scripted.commands.includes('RSET'));
      assert.equal(gw.events('message').at(-1)!.quarantined, true);
    } finally {
      await gw.close();
      await scripted.close();
    }
  });

  it('quarantine that cannot be written: 451 4.3.0, never 250', async () => {
    await withRelay({ policy: [rule('quarantine'), 'quarantine.dir=/dev/null/quarantine'] }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage('hold this'));
      assert.match(text(r.data), /^451 4\.3\.0 /);
      assert.equal(sink.messages.length, 0);
      assert.equal(gw.events('quarantine_failed').length, 1);
    });
  });

  it('tag: relayed with the verdict header on top and the message otherwise unchanged', async () => {
    await withRelay({ policy: [rule('tag')] }, async ({ gw, sink }) => {
      const message = messages.simpleMessage('hold on');
      const r = await transaction(gw.port, MAIL, [RCPT], message);
      assert.equal(r.data?.code, 250);
      const received = sink.messages[0].bytes;
      const eol = received.indexOf('\r\n') + 2;
      assert.match(received.subarray(0, eol).toString(), /^X-Mailmoat-Verdict: tag; score=4; symbols=SUBJECT_HOLD; id=[0-9A-Z]{26}\r\n$/);
      assert.ok(received.subarray(eol).equals(message));
    });
  });

  it('an exception for the sender sets the finding aside: relayed, and the log says why', async () => {
    await withRelay(
      { policy: [rule('reject'), 'verdict.exceptions=[{senders: ["@internal.test"], symbols: [SUBJECT_HOLD], description: trusted colleagues}]'] },
      async ({ gw }) => {
        const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage('hold everything'));
        assert.equal(r.data?.code, 250);
        const line = gw.events('message').at(-1)!;
        assert.equal(line.verdict, 'relay');
        assert.deepEqual(line.findings, [
          { symbol: 'SUBJECT_HOLD', score: 4, detail: 'Subject matches /^hold/: "hold everything"', excepted: 'trusted colleagues' },
        ]);
        const other = await transaction(gw.port, 'MAIL FROM:<mallory@outside.test>', [RCPT], messages.simpleMessage('hold everything'));
        assert.equal(other.data?.code, 550);
      },
    );
  });

  it('leaves no spool files behind', () => {
    const spool = path.join(process.cwd(), 'var', 'test-spool');
    assert.ok(!existsSync(spool) || readdirSync(spool).length === 0, `spool has ${existsSync(spool) ? readdirSync(spool).join(', ') : ''}`);
  });
});

describe('Authentication-Results', function () {
  it('spoof.authenticationResults prepends the result of SPF/DKIM/DMARC to relayed mail, and nothing else changes', async () => {
    // the gateway asks the name server the policy names: one on loopback with partner.example's SPF
    const dns = await startDnsServer({ 'partner.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] } });
    try {
      await withRelay(
        {
          policy: [
            'spoof.authenticationResults=true',
            `dns.servers=["${dns.address}"]`,
            'dns.timeout=300ms',
            'network.internalNetworks=[10.0.0.0/8]',
            'network.internalDomains=[outside.test]',
          ],
        },
        async ({ gw, sink }) => {
          const message = messages.simpleMessage('hello');
          const r = await transaction(gw.port, 'MAIL FROM:<alice@partner.example>', [RCPT], message);
          assert.equal(r.data?.code, 250, text(r.data));
          const received = sink.messages[0].bytes;
          const eol = received.indexOf('\r\n') + 2;
          assert.match(received.subarray(0, eol).toString(), /^Authentication-Results: [^\r\n]*spf=pass/);
          assert.ok(received.subarray(eol).equals(message));
          assert.ok(dns.questions.some((q) => q.name === 'partner.example' && q.type === 'TXT'));
        },
      );
    } finally {
      await dns.close();
    }
  });
});

describe('quarantine notices', function () {
  const waitFor = async (check: () => boolean) => {
    for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('notify.to=recipients tells the internal recipients (never outside ones) the id, sender, subject and why, without the message', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-notice-'));
    await withRelay(
      {
        policy: [
          rule('quarantine'),
          `quarantine.dir=${dir}`,
          'network.internalDomains=[internal.test]',
          'quarantine.notify.to=recipients',
          'quarantine.notify.from=postmaster@internal.test',
        ],
      },
      async ({ gw, sink }) => {
        const r = await transaction(
          gw.port,
          'MAIL FROM:<mallory@outside.test>',
          ['RCPT TO:<bob@internal.test>', 'RCPT TO:<carol@outside.test>'],
          messages.simpleMessage('hold: secret payload'),
        );
        const id = /quarantined as ([0-9A-Z]{26})/.exec(text(r.data))?.[1];
        assert.ok(id, text(r.data));
        await waitFor(() => sink.messages.length > 0);
        assert.equal(sink.messages.length, 1);
        const notice = sink.messages[0];
        assert.match(notice.mailLine, /^MAIL FROM:<postmaster@internal\.test>/);
        assert.deepEqual(notice.rcptLines, ['RCPT TO:<bob@internal.test>']);
        const body = notice.bytes.toString();
        assert.match(body, new RegExp(`Quarantine id: ${id}`));
        assert.match(body, /Sender: +mallory@outside\.test/);
        assert.match(body, /SUBJECT_HOLD/);
        assert.doesNotMatch(body, /Hello there/, 'the quarantined message itself is not in the notice');
        assert.equal(gw.events('quarantine_notice')[0].id, id);
      },
    );
  });

  it('no notice by default', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-notice-'));
    await withRelay({ policy: [rule('quarantine'), `quarantine.dir=${dir}`, 'network.internalDomains=[internal.test]'] }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, 'MAIL FROM:<mallory@outside.test>', ['RCPT TO:<bob@internal.test>'], messages.simpleMessage('hold it'));
      assert.match(text(r.data), /quarantined as/);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(sink.messages.length, 0);
    });
  });
});
