// The relay path end to end: a real client, the gateway, a real downstream, over loopback sockets.
import assert from 'node:assert/strict';
import { connect, rawExchange, sendData, text, transaction } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { sha256, startSink, type Sink } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';

describe('relay: byte-exact, envelope verbatim', function () {
  let sink: Sink;
  let gw: RunningGateway;

  before(async () => {
    sink = await startSink();
    gw = await startGateway(sink.port);
  });
  after(async () => {
    await gw.close();
    await sink.close();
  });

  const cases: [string, () => Buffer][] = [
    ['lines longer than 998 characters', messages.longLines],
    ['lines starting with dots', messages.dotLines],
    ['a message whose first byte is a dot', messages.dotFirst],
    ['8-bit UTF-8 headers and body', messages.utf8Message],
    ['bare LF and bare CR inside lines', messages.bareLineEndings],
    ['a 20 MB attachment', () => messages.withAttachment(15 * 1024 * 1024)],
  ];
  for (const [name, build] of cases) {
    it(`relays ${name} unchanged (SHA-256 equal)`, async () => {
      const message = build();
      const before = sink.messages.length;
      const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test> BODY=8BITMIME', ['RCPT TO:<bob@outside.test>'], message);
      assert.equal(r.data?.code, 250, text(r.data));
      assert.equal(sink.messages.length, before + 1);
      const received = sink.messages.at(-1)!;
      assert.equal(received.bytes.length, message.length);
      assert.equal(received.sha256, sha256(message));
    });
  }

  it('forwards MAIL and RCPT lines verbatim, ESMTP and DSN parameters included, for an SMTPUTF8 address', async () => {
    const mail = 'MAIL FROM:<jörg@exämple.test> SIZE=300 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=env+2B123';
    const rcpt = 'RCPT TO:<山田@例え.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@outside.test';
    const message = messages.utf8Message();
    const r = await transaction(gw.port, mail, [rcpt], message);
    assert.equal(r.data?.code, 250, text(r.data));
    const received = sink.messages.at(-1)!;
    assert.equal(received.mailLine, mail);
    assert.deepEqual(received.rcptLines, [rcpt]);
    assert.equal(received.sha256, sha256(message));
  });

  it('relays to 200 recipients, each RCPT answered by the downstream', async () => {
    const rcpts = Array.from({ length: 200 }, (_, i) => `RCPT TO:<user${i}@outside.test>`);
    const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', rcpts, messages.simpleMessage());
    assert.ok(r.rcpts.every((x) => x.code === 250));
    assert.equal(r.data?.code, 250);
    assert.deepEqual(sink.messages.at(-1)!.rcptLines, rcpts);
  });

  it("returns the downstream's own final reply to the client", async () => {
    const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], messages.simpleMessage());
    assert.match(text(r.data), /^250 2\.0\.0 Ok: queued as SINK\d+$/);
  });

  it('answers pipelined commands in order, mirroring each downstream reply', async () => {
    const message = messages.simpleMessage('pipelined').toString();
    const input =
      'EHLO client.test\r\nMAIL FROM:<alice@internal.test>\r\nRCPT TO:<a@outside.test>\r\nRCPT TO:<b@outside.test>\r\nDATA\r\n' + message + '.\r\nQUIT\r\n';
    const replies = await rawExchange(gw.port, input, 7);
    assert.deepEqual(
      replies.map((r) => r.slice(0, 3)),
      ['250', '250', '250', '250', '354', '250', '221'],
    );
    assert.ok(replies[0].includes('PIPELINING'));
    assert.deepEqual(sink.messages.at(-1)!.rcptLines, ['RCPT TO:<a@outside.test>', 'RCPT TO:<b@outside.test>']);
  });

  it('logs one JSON line per message with id, client, envelope, size, verdict and downstream reply', async () => {
    const message = messages.simpleMessage('log line');
    await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], message);
    const line = gw.events('message').at(-1)!;
    assert.match(String(line.id), /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(line.client, '127.0.0.1');
    assert.equal(line.helo, 'client.test');
    assert.equal(line.from, 'alice@internal.test');
    assert.deepEqual(line.rcpt, ['bob@outside.test']);
    assert.equal(line.size, message.length);
    assert.equal(line.verdict, 'relay');
    assert.match(String(line.downstream), /^250 2\.0\.0 Ok: queued as SINK/);
    assert.equal(typeof line.duration_ms, 'number');
    assert.equal(line.policy, gw.loaded.version);
  });
});

describe('relay: added headers', function () {
  it('with relay.verdictHeader, the only difference is the header added at the top', async () => {
    const sink = await startSink();
    const gw = await startGateway(sink.port, ['relay.verdictHeader=true']);
    try {
      const message = messages.dotLines();
      const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], message);
      assert.equal(r.data?.code, 250);
      const received = sink.messages[0].bytes;
      const eol = received.indexOf('\r\n') + 2;
      assert.match(received.subarray(0, eol).toString(), /^X-Mailmoat-Verdict: relay; score=0; symbols=none; id=[0-9A-Z]{26}\r\n$/);
      assert.equal(sha256(received.subarray(eol)), sha256(message));
    } finally {
      await gw.close();
      await sink.close();
    }
  });
});

describe('relay: downstream connections', function () {
  it('300 MAIL/RSET pairs on one client connection reuse one downstream connection (RSET, never a dropped one)', async () => {
    const sink = await startSink();
    // RSET is a junk command: past limits.maxJunkCommands (100) the client would be cut off first
    const gw = await startGateway(sink.port, ['limits.maxJunkCommands=null']);
    try {
      const client = await connect(gw.port);
      for (let i = 0; i < 300; i++) {
        assert.equal((await client.command(`MAIL FROM:<alice${i}@internal.test>`)).code, 250);
        if (i % 3 === 0) assert.equal((await client.command('RCPT TO:<bob@outside.test>')).code, 250);
        assert.equal((await client.command('RSET')).code, 250);
      }
      assert.equal((await client.command('MAIL FROM:<alice@internal.test>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@outside.test>')).code, 250);
      assert.equal((await sendData(client, messages.simpleMessage())).code, 250);
      await client.quit();
      assert.equal(sink.connections, 1, 'one downstream connection for all of them');
      assert.equal(sink.closedConnections, 0, 'none dropped mid-transaction');
      assert.equal(sink.mails.length, 301);
      assert.ok(sink.resets >= 300, `RSET downstream for each abandoned transaction (${sink.resets})`);
      assert.equal(sink.messages.length, 1);
    } finally {
      await gw.close();
      await sink.close();
    }
  });

  it('a client that disconnects after RCPT leaves the downstream connection pooled (RSET), not dropped', async () => {
    const sink = await startSink();
    const gw = await startGateway(sink.port);
    try {
      for (let i = 0; i < 5; i++) {
        const client = await connect(gw.port);
        assert.equal((await client.command('MAIL FROM:<alice@internal.test>')).code, 250);
        assert.equal((await client.command('RCPT TO:<bob@outside.test>')).code, 250);
        client.close();
        for (let w = 0; w < 100 && gw.gateway.activeTransactions; w++) await new Promise((r) => setTimeout(r, 10));
      }
      const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], messages.simpleMessage());
      assert.equal(r.data?.code, 250);
      assert.equal(sink.connections, 1);
      assert.equal(sink.closedConnections, 0);
      assert.equal(gw.events('transaction_abandoned').length, 5);
    } finally {
      await gw.close();
      await sink.close();
    }
  });
});
