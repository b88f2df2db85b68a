// Interop with a real Postfix in front: smtpd with smtpd_proxy_filter → the gateway → a recording
// downstream. Proves what Postfix's before-queue proxy client expects of us: XFORWARD accepted,
// parameters passed through, per-recipient replies mirrored, our verdict relayed to the client.
// Needs Postfix (Debian package postfix) and root (Postfix sets its queue's ownership); otherwise skipped.
import assert from 'node:assert/strict';
import { connect, sendData, text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import type { SmtpReply } from '../../src/relay/smtp-client.js';
import { postfixUnavailable, startPostfix, type PrivatePostfix } from '../helpers/private-postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';

describe('interop: Postfix smtpd_proxy_filter in front of the gateway', function () {
  let postfix: PrivatePostfix | undefined;
  let port: number;
  let sink: Sink;
  let gw: RunningGateway;

  before(async function () {
    this.timeout(60000);
    const missing = postfixUnavailable();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    sink = await startSink({
      rcpt: (a) => (a.startsWith('unknown@') ? [550, '5.1.1 <unknown@internal.test>: Recipient address rejected: User unknown'] : undefined),
    });
    gw = await startGateway(sink.port, [
      'network.internalDomains=[internal.test]',
      'rules.headers=[{symbol: SUBJECT_BLOCKED, header: Subject, match: "^\\\\[blocked\\\\]", action: reject}]',
    ]);
    // the gateway relays to the sink itself; Postfix's own next hop is never used here
    postfix = await startPostfix({ nextHopPort: sink.port, smtpd: [`smtpd_proxy_filter=127.0.0.1:${gw.port}`, 'smtpd_proxy_timeout=30s'] });
    port = postfix.port;
  });

  after(async () => {
    postfix?.stop();
    await gw?.close();
    await sink?.close();
  });

  it('relays through Postfix: per-recipient downstream replies reach the client, the good ones are delivered', async () => {
    const r = await transaction(
      port,
      'MAIL FROM:<alice@outside.test> BODY=8BITMIME',
      ['RCPT TO:<bob@internal.test> NOTIFY=SUCCESS,FAILURE', 'RCPT TO:<unknown@internal.test>'],
      messages.simpleMessage('through postfix'),
    );
    assert.equal(r.rcpts[0].code, 250);
    assert.equal(text(r.rcpts[1]), '550 5.1.1 <unknown@internal.test>: Recipient address rejected: User unknown');
    assert.match(text(r.data), /^250 2\.0\.0 Ok: queued as SINK\d+/);
    const received = sink.messages.at(-1)!;
    assert.match(received.mailLine, /^MAIL FROM:<alice@outside\.test> BODY=8BITMIME/);
    assert.deepEqual(received.rcptLines, ['RCPT TO:<bob@internal.test> NOTIFY=SUCCESS,FAILURE']);
    // Postfix told the gateway who the real client was; the gateway told the downstream
    assert.equal(received.xforward?.get('HELO'), 'client.test');
    assert.match(received.bytes.toString(), /^Received: from client\.test \(localhost \[127\.0\.0\.1\]\)/);
    await postfix!.waitLog(/proxy-accept: END-OF-MESSAGE: 250 2\.0\.0 Ok: queued as SINK/);
    await postfix!.waitLog(/proxy [\d.:]+ rejected "RCPT TO:<unknown@internal\.test>": "550 5\.1\.1 /);
  });

  it("the gateway's reject reaches the client through Postfix and nothing is delivered", async () => {
    const before = sink.messages.length;
    const r = await transaction(port, 'MAIL FROM:<alice@outside.test>', ['RCPT TO:<bob@internal.test>'], messages.simpleMessage('[blocked] invoice'));
    assert.match(text(r.data), /^550 5\.7\.1 Message rejected by policy/);
    assert.equal(sink.messages.length, before);
    await postfix!.waitLog(/proxy-reject: END-OF-MESSAGE: 550 5\.7\.1 Message rejected by policy/);
  });
});

describe('interop: Postfix in front is not limited by maxClientsPerIp (it speaks for many clients)', function () {
  let postfix: PrivatePostfix | undefined;
  let sink: Sink;
  let gw: RunningGateway;

  before(async function () {
    this.timeout(60000);
    const missing = postfixUnavailable();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    sink = await startSink();
    gw = await startGateway(sink.port, ['network.internalDomains=[internal.test]', 'limits.maxClientsPerIp=1']);
    postfix = await startPostfix({ nextHopPort: sink.port, smtpd: [`smtpd_proxy_filter=127.0.0.1:${gw.port}`, 'smtpd_proxy_timeout=30s'] });
  });

  after(async () => {
    postfix?.stop();
    await gw?.close();
    await sink?.close();
  });

  /** `n` clients of Postfix, each in a transaction at once (each holds a proxy connection); their RCPT replies. */
  async function concurrent(n: number, tag: string) {
    const clients = await Promise.all(Array.from({ length: n }, () => connect(postfix!.port)));
    const rcpts: SmtpReply[] = [];
    for (const client of clients) {
      const mail = await client.command('MAIL FROM:<alice@outside.test>');
      rcpts.push(mail.code === 250 ? await client.command('RCPT TO:<bob@internal.test>') : mail);
    }
    const data = await Promise.all(
      clients.map((c, i) => (rcpts[i].code === 250 ? sendData(c, messages.simpleMessage(`${tag} ${i}`)) : Promise.resolve(undefined))),
    );
    await Promise.all(clients.map((c) => c.quit()));
    return { rcpts, data };
  }

  it('five Postfix sessions at once all reach the gateway from one address; as direct clients, the second would be refused', async () => {
    const through = await concurrent(5, 'through postfix');
    assert.deepEqual(
      through.rcpts.map((r) => r.code),
      [250, 250, 250, 250, 250],
    );
    assert.deepEqual(
      through.data.map((r) => r?.code),
      [250, 250, 250, 250, 250],
    );
    assert.equal(gw.events('client_refused').length, 0);

    // the contrast: were Postfix's address not in xforwardHosts, the limit would hold its sessions
    for (let i = 0; i < 100 && gw.gateway.server.connections.size; i++) await new Promise((r) => setTimeout(r, 50));
    gw.loaded.policy = { ...gw.loaded.policy, xforwardHosts: [] };
    const direct = await concurrent(2, 'as a direct client');
    assert.equal(direct.rcpts[0].code, 250, text(direct.rcpts[0]));
    assert.ok(direct.rcpts[1].code >= 400, text(direct.rcpts[1]));
    assert.equal(gw.events('client_refused').length, 1);
  });
});
