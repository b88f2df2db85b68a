// Interop with a real Postfix in front: smtpd with smtpd_proxy_filter → the gateway → a recording
// downstream. Proves what Postfix's before-queue proxy client expects of us: XFORWARD accepted,
// parameters passed through, per-recipient replies mirrored, our verdict relayed to the client.
// Needs Postfix (Debian package postfix) and root (Postfix sets its queue's ownership); otherwise skipped.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/global.js';
import { postfixTool } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';

describe('interop: Postfix smtpd_proxy_filter in front of the gateway', function () {
  let dir: string;
  let postfix: string;
  let port: number;
  let sink: Sink;
  let gw: RunningGateway;

  const run = (...args: string[]) => execFileSync('script', ['-qc', [postfix, '-c', dir, ...args].join(' '), '/dev/null'], { encoding: 'utf8' });

  before(async function () {
    this.timeout(60000);
    postfix = postfixTool('postfix')!;
    if (!postfix || process.getuid?.() !== 0) {
      console.log('      skipped: needs Postfix (Debian package postfix) and root to run a private instance');
      this.skip();
    }
    sink = await startSink({ rcpt: (a) => (a.startsWith('unknown@') ? [550, '5.1.1 <unknown@internal.test>: Recipient address rejected: User unknown'] : undefined) });
    gw = await startGateway(sink.port, [
      'network.internalDomains=[internal.test]',
      'rules.headers=[{symbol: SUBJECT_BLOCKED, header: Subject, match: "^\\\\[blocked\\\\]", action: reject}]',
    ]);
    port = await freePort();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-postfix-'));
    mkdirSync(path.join(dir, 'queue'));
    mkdirSync(path.join(dir, 'data'));
    copyFileSync('/etc/postfix/master.cf', path.join(dir, 'master.cf'));
    writeFileSync(
      path.join(dir, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${dir}/queue`,
        `data_directory = ${dir}/data`,
        'inet_interfaces = 127.0.0.1',
        'inet_protocols = ipv4',
        'myhostname = mx.test.local',
        'mydestination =',
        'mynetworks = 127.0.0.0/8',
        'smtpd_recipient_restrictions = permit_mynetworks, reject',
        `maillog_file = ${dir}/maillog`,
        `maillog_file_prefixes = /var, /dev/stdout, ${tmpdir()}`,
        'smtpd_proxy_timeout = 30s',
        '',
      ].join('\n'),
    );
    const postconf = postfixTool('postconf')!;
    execFileSync(postconf, ['-c', dir, '-F', '*/*/chroot = n']);
    execFileSync(postconf, ['-c', dir, '-M', `127.0.0.1:${port}/inet=127.0.0.1:${port} inet n - n - - smtpd -o smtpd_proxy_filter=127.0.0.1:${gw.port}`]);
    execFileSync('chown', ['postfix', path.join(dir, 'data')]);
    run('set-permissions');
    run('start');
    for (let i = 0; i < 100; i++) {
      try {
        const r = await transaction(port, 'NOOP', [], '');
        if (r.mail.code === 250) break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  after(async () => {
    if (dir) {
      run('stop');
      rmSync(dir, { recursive: true, force: true });
    }
    await gw?.close();
    await sink?.close();
  });

  const maillog = () => readFileSync(path.join(dir, 'maillog'), 'utf8');

  it('relays through Postfix: per-recipient downstream replies reach the client, the good ones are delivered', async () => {
    const r = await transaction(
      port,
      'MAIL FROM:<alice@outside.test> BODY=8BITMIME',
      ['RCPT TO:<bob@internal.test> NOTIFY=SUCCESS,FAILURE', 'RCPT TO:<unknown@internal.test>'],
      messages.simpleMessage('through postfix'),
    );
    assert.equal(r.rcpts[0]!.code, 250);
    assert.equal(text(r.rcpts[1]), '550 5.1.1 <unknown@internal.test>: Recipient address rejected: User unknown');
    assert.match(text(r.data), /^250 2\.0\.0 Ok: queued as SINK\d+/);
    const received = sink.messages.at(-1)!;
    assert.match(received.mailLine, /^MAIL FROM:<alice@outside\.test> BODY=8BITMIME/);
    assert.deepEqual(received.rcptLines, ['RCPT TO:<bob@internal.test> NOTIFY=SUCCESS,FAILURE']);
    // Postfix told the gateway who the real client was; the gateway told the downstream
    assert.equal(received.xforward?.get('HELO'), 'client.test');
    assert.match(received.bytes.toString(), /^Received: from client\.test \(localhost \[127\.0\.0\.1\]\)/);
    assert.match(maillog(), /proxy-accept: END-OF-MESSAGE: 250 2\.0\.0 Ok: queued as SINK/);
    assert.match(maillog(), /proxy [\d.:]+ rejected "RCPT TO:<unknown@internal\.test>": "550 5\.1\.1 /);
  });

  it("the gateway's reject reaches the client through Postfix and nothing is delivered", async () => {
    const before = sink.messages.length;
    const r = await transaction(port, 'MAIL FROM:<alice@outside.test>', ['RCPT TO:<bob@internal.test>'], messages.simpleMessage('[blocked] invoice'));
    assert.match(text(r.data), /^550 5\.7\.1 Message rejected by policy/);
    assert.equal(sink.messages.length, before);
    assert.match(maillog(), /proxy-reject: END-OF-MESSAGE: 550 5\.7\.1 Message rejected by policy/);
  });
});
