// A MAIL or RCPT line with a control character (a bare CR, NUL...) or bytes that are not UTF-8 is a
// syntax error answered at once: never forwarded, never a downstream round trip, never a 451.
import assert from 'node:assert/strict';
import { rawExchange } from '../helpers/client.js';
import { withRelay } from '../helpers/relay.js';
import { faultyLines } from '../fixtures/command-lines.js';
import * as messages from '../fixtures/messages.js';

const POLICY = ['network.internalNetworks=[10.0.0.0/8]', 'network.internalDomains=[corp.example]'];

describe('MAIL and RCPT lines with a control character', function () {
  it('MAIL: 501 5.5.2 at once, the downstream never asked', async () => {
    await withRelay({ policy: POLICY }, async ({ gw, sink }) => {
      const faulty = faultyLines('MAIL FROM', 'alice@outside.example');
      const input = Buffer.concat([
        Buffer.from('EHLO client.test\r\n'),
        ...faulty.flatMap(({ bytes }) => [bytes, Buffer.from('\r\n')]),
        Buffer.from('MAIL FROM:<alice@outside.example>\r\n'),
      ]);
      const replies = await rawExchange(gw.port, input, 2 + faulty.length);
      faulty.forEach(({ name }, i) => assert.match(replies[1 + i], /^501 5\.5\.2 Syntax error: /, name));
      assert.match(replies.at(-1)!, /^250 /);
      assert.deepEqual(sink.mails, ['MAIL FROM:<alice@outside.example>']);
    });
  });

  it('RCPT: 501 5.5.2 at once (never 451 Downstream unavailable), the transaction goes on', async () => {
    await withRelay({ policy: POLICY }, async ({ gw, sink }) => {
      const faulty = faultyLines('RCPT TO', `bob@corp.example`);
      const input = Buffer.concat([
        Buffer.from('EHLO client.test\r\nMAIL FROM:<alice@outside.example>\r\n'),
        ...faulty.flatMap(({ bytes }) => [bytes, Buffer.from('\r\n')]),
        Buffer.from(`RCPT TO:<bob@corp.example>\r\nDATA\r\n`),
        messages.simpleMessage('after the faults'),
        Buffer.from('.\r\n'),
      ]);
      const replies = await rawExchange(gw.port, input, 2 + faulty.length + 3);
      faulty.forEach(({ name }, i) => assert.match(replies[2 + i], /^501 5\.5\.2 Syntax error: /, name));
      assert.deepEqual(
        replies.slice(-3).map((r) => r.slice(0, 3)),
        ['250', '354', '250'],
      );
      assert.deepEqual(sink.messages[0].rcptLines, [`RCPT TO:<bob@corp.example>`]);
    });
  });
});
