// No open relay, and XFORWARD handled the way Postfix's proxy client needs it.
import assert from 'node:assert/strict';
import { connect, rawExchange, text, transaction } from '../helpers/client.js';
import * as messages from '../fixtures/messages.js';
import { withRelay } from '../helpers/relay.js';

describe('relay control', function () {
  // loopback is made an outside network: the test client is then a stranger on the Internet
  const outside = ['network.internalNetworks=[10.0.0.0/8]', 'network.internalDomains=[internal.test, "*.branch.test"]'];

  it('an outside client cannot relay to an outside domain: 554 5.7.1 at RCPT, nothing reaches the downstream', async () => {
    await withRelay({ policy: outside }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, 'MAIL FROM:<spammer@evil.test>', ['RCPT TO:<victim@elsewhere.test>'], messages.simpleMessage());
      assert.match(text(r.rcpts[0]), /^554 5\.7\.1 <victim@elsewhere\.test>: Relay access denied$/);
      assert.equal(r.data, undefined);
      assert.equal(sink.messages.length, 0);
      assert.equal(gw.events('relay_denied').length, 1);
    });
  });

  it('an outside client may send to the internal domains (and their listed subdomains), not to look-alikes', async () => {
    await withRelay({ policy: outside }, async ({ gw }) => {
      const r = await transaction(
        gw.port,
        'MAIL FROM:<partner@outside.test>',
        [
          'RCPT TO:<bob@internal.test>',
          'RCPT TO:<carol@hq.branch.test>',
          'RCPT TO:<eve@notinternal.test>',
          'RCPT TO:<x@internal.test.evil.test>',
          'RCPT TO:<BOB@INTERNAL.TEST>',
        ],
        messages.simpleMessage(),
      );
      assert.deepEqual(
        r.rcpts.map((x) => x.code),
        [250, 250, 554, 554, 250],
      );
      assert.equal(r.data?.code, 250);
    });
  });

  it('an internal client may relay anywhere', async () => {
    await withRelay({ policy: ['network.internalNetworks=[127.0.0.0/8]'] }, async ({ gw }) => {
      const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<anyone@anywhere.test>'], messages.simpleMessage());
      assert.equal(r.data?.code, 250);
    });
  });
});

describe('XFORWARD', function () {
  it('accepts what Postfix sends ([UNAVAILABLE], IPV6:, odd names and HELOs) with 250, never 501', async () => {
    await withRelay({}, async ({ gw }) => {
      const commands = [
        'XFORWARD NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE] PROTO=[UNAVAILABLE] HELO=[UNAVAILABLE]',
        'XFORWARD ADDR=IPV6:2001:db8::25 PORT=54321',
        'XFORWARD NAME=mail_relay.example.com HELO=Some+20Windows+20Box',
        'XFORWARD NAME=-bad-.example..com IDENT=abc SOURCE=REMOTE',
        'XFORWARD HELO=[192.0.2.1] PROTO=ESMTP',
      ];
      const replies = await rawExchange(gw.port, 'EHLO mx.test\r\n' + commands.map((c) => c + '\r\n').join(''), 1 + commands.length);
      assert.deepEqual(
        replies.slice(1).map((r) => r.slice(0, 3)),
        commands.map(() => '250'),
      );
    });
  });

  it("passes the original client's attributes on to a downstream that offers XFORWARD, as received", async () => {
    await withRelay({ policy: ['network.internalDomains=[internal.test]'] }, async ({ gw, sink }) => {
      const client = await connect(gw.port, 'mx.test');
      assert.equal(text(await client.command('XFORWARD NAME=client.example ADDR=IPV6:2001:db8::25 PORT=4711')), '250 2.0.0 OK');
      assert.equal(text(await client.command('XFORWARD PROTO=ESMTP HELO=Client+20Box')), '250 2.0.0 OK');
      assert.equal((await client.command('MAIL FROM:<alice@internal.test>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@internal.test>')).code, 250);
      const go = await client.command('DATA');
      assert.equal(go.code, 354);
      const { Readable } = await import('node:stream');
      assert.equal((await client.sendMessage(Readable.from([messages.simpleMessage()]), 10000)).code, 250);
      await client.quit();
      const xf = sink.messages[0].xforward!;
      assert.equal(xf.get('NAME'), 'client.example');
      assert.equal(xf.get('ADDR'), 'IPV6:2001:db8::25');
      assert.equal(xf.get('HELO'), 'Client+20Box');
      assert.equal(xf.get('PROTO'), 'ESMTP');
    });
  });

  it("without XFORWARD from upstream, tells the downstream about the gateway's own client", async () => {
    await withRelay({}, async ({ gw, sink }) => {
      await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@internal.test>'], messages.simpleMessage());
      const xf = sink.messages[0].xforward!;
      assert.equal(xf.get('ADDR'), '127.0.0.1');
      assert.equal(xf.get('HELO'), 'client.test');
      assert.equal(xf.get('PROTO'), 'ESMTP');
    });
  });

  it('relay control judges the forwarded client address, not the proxy in front', async () => {
    await withRelay({ policy: ['network.internalNetworks=[127.0.0.0/8]', 'network.internalDomains=[internal.test]'] }, async ({ gw }) => {
      const replies = await rawExchange(
        gw.port,
        'EHLO mx.test\r\nXFORWARD ADDR=203.0.113.9 NAME=[UNAVAILABLE]\r\nMAIL FROM:<x@outside.test>\r\nRCPT TO:<y@elsewhere.test>\r\nRCPT TO:<bob@internal.test>\r\n',
        5,
      );
      assert.match(replies[3], /^554 5\.7\.1 /);
      assert.match(replies[4], /^250 /);
    });
  });

  it('is neither offered to nor accepted from clients outside xforwardHosts', async () => {
    await withRelay({ policy: ['xforwardHosts=[192.0.2.0/24]'] }, async ({ gw }) => {
      const client = await connect(gw.port);
      assert.ok(!client.extensions.has('XFORWARD'));
      const reply = await client.command('XFORWARD ADDR=10.1.2.3');
      assert.ok(reply.code >= 500, text(reply));
      await client.quit();
    });
  });
});
