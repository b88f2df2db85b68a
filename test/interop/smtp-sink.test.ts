// Interop with Postfix's smtp-sink as the downstream: what a real MTA records of our relay leg
// (MAIL/RCPT arguments, XFORWARD client attributes) through its -d transaction dumps.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rawExchange, text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/global.js';
import { requirePostfixTool } from '../helpers/postfix.js';
import * as messages from '../fixtures/messages.js';

describe('interop: Postfix smtp-sink downstream', function () {
  let sink: ChildProcess;
  let dumps: string;
  let verbose = '';
  let gw: RunningGateway;

  before(async function () {
    const smtpSink = requirePostfixTool(this, 'smtp-sink');
    dumps = mkdtempSync(path.join(tmpdir(), 'mailmoat-sink-'));
    chmodSync(dumps, 0o777);
    const port = await freePort();
    const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    sink = spawn(smtpSink, ['-v', ...asRoot, '-d', `${dumps}/%M.`, `127.0.0.1:${port}`, '10'], { stdio: ['ignore', 'pipe', 'pipe'] });
    sink.stdout!.on('data', (d: Buffer) => (verbose += d.toString()));
    sink.stderr!.on('data', (d: Buffer) => (verbose += d.toString()));
    for (let i = 0; i < 100; i++) {
      const up = await rawExchange(port, 'QUIT\r\n', 1, 500).catch(() => []);
      if (up.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    gw = await startGateway(port, ['network.internalDomains=[internal.test]']);
  });
  after(async () => {
    await gw?.close();
    sink?.kill();
  });

  async function lastDump(): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const files = readdirSync(dumps);
      if (files.length) return readFileSync(path.join(dumps, files.sort().at(-1)!), 'latin1');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail('smtp-sink wrote no dump');
  }

  it('receives the envelope with every parameter and the original client via XFORWARD', async () => {
    const replies = await rawExchange(
      gw.port,
      'EHLO mx.test\r\nXFORWARD NAME=client.example ADDR=192.0.2.7 PORT=4711 HELO=client+20box PROTO=ESMTP\r\n' +
        'MAIL FROM:<alice@src.test> SIZE=300 BODY=8BITMIME RET=HDRS ENVID=env123\r\n' +
        'RCPT TO:<bob@internal.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@internal.test\r\nDATA\r\n' +
        messages.simpleMessage('interop').toString() +
        '.\r\nQUIT\r\n',
      7,
    );
    assert.match(replies[5], /^250 /, replies.join(' | '));
    const dump = await lastDump();
    // smtp-sink offers XFORWARD NAME ADDR PROTO HELO: exactly those are passed on, values as received
    assert.match(verbose, /XFORWARD NAME=client\.example ADDR=192\.0\.2\.7 PROTO=ESMTP HELO=client\+20box\n/);
    assert.match(dump, /^X-Mail-Args: <alice@src\.test> SIZE=300 BODY=8BITMIME RET=HDRS ENVID=env123$/m);
    assert.match(dump, /^X-Rcpt-Args: <bob@internal\.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@internal\.test$/m);
    assert.match(dump, /^Subject: interop$/m);
  });

  it('a message the policy does not relay never reaches the sink', async () => {
    const before = readdirSync(dumps).length;
    const gwReject = await startGateway(Number(gw.loaded.policy.downstream.port), ['rules.size=[{symbol: TOO_BIG_FOR_TEST, over: 10, action: reject}]']);
    try {
      const r = await transaction(gwReject.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<b@internal.test>'], messages.simpleMessage());
      assert.match(text(r.data), /^550 5\.7\.1 /);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(readdirSync(dumps).length, before);
    } finally {
      await gwReject.close();
    }
  });
});
