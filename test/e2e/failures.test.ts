// Every way a transaction can fail ends in a clear reply of the right class, and never in a 250
// for mail that the downstream did not accept.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, text, transaction } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/global.js';
import { startScripted } from '../helpers/scripted.js';
import * as messages from '../fixtures/messages.js';
import { withRelay } from '../helpers/relay.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';

describe('failure paths', function () {
  it('downstream unreachable: 451 4.4.1 at MAIL, never 250', async () => {
    const gw = await startGateway(await freePort());
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage());
      assert.match(text(r.mail), /^451 4\.4\.1 /);
      assert.equal(r.data, undefined);
    } finally {
      await gw.close();
    }
  });

  it('downstream accepting the connection but never answering: 451 4.4.1 after the command timeout', async () => {
    const silent = await startScripted({ greeting: null });
    const gw = await startGateway(silent.port, ['timeouts.downstreamCommand=300ms']);
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage());
      assert.match(text(r.mail), /^451 4\.4\.1 /);
    } finally {
      await gw.close();
      await silent.close();
    }
  });

  it('downstream silent after the final dot: 451 4.4.1, not 250', async () => {
    const slow = await startScripted({ replies: { DOT: null } });
    const gw = await startGateway(slow.port, ['timeouts.downstreamData=300ms']);
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage());
      assert.match(text(r.data), /^451 4\.4\.1 /);
    } finally {
      await gw.close();
      await slow.close();
    }
  });

  it('downstream 4xx at MAIL reaches the client as that 4xx', async () => {
    await withRelay({ sink: { mail: () => [451, '4.3.2 Try later'] } }, async ({ gw }) => {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage());
      assert.equal(text(r.mail), '451 4.3.2 Try later');
    });
  });

  it("downstream 5xx for one recipient is that recipient's reply; the others are delivered", async () => {
    await withRelay(
      { sink: { rcpt: (a) => (a.startsWith('nobody@') ? [550, '5.1.1 <nobody@outside.test>: Recipient address rejected'] : undefined) } },
      async ({ gw, sink }) => {
        const r = await transaction(
          gw.port,
          MAIL,
          ['RCPT TO:<a@outside.test>', 'RCPT TO:<nobody@outside.test>', 'RCPT TO:<b@outside.test>'],
          messages.simpleMessage(),
        );
        assert.deepEqual(r.rcpts.map(text), ['250 2.1.5 Accepted', '550 5.1.1 <nobody@outside.test>: Recipient address rejected', '250 2.1.5 Accepted']);
        assert.equal(r.data?.code, 250);
        assert.deepEqual(sink.messages[0].rcptLines, ['RCPT TO:<a@outside.test>', 'RCPT TO:<b@outside.test>']);
        assert.deepEqual(gw.events('message').at(-1)!.rcpt, ['a@outside.test', 'b@outside.test']);
      },
    );
  });

  it('downstream refusing DATA: the client gets that reply after its data, and no dot goes downstream', async () => {
    const scripted = await startScripted({ replies: { DATA: '554 5.5.1 No valid recipients' } });
    const gw = await startGateway(scripted.port);
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage());
      assert.equal(text(r.data), '554 5.5.1 No valid recipients');
      assert.equal(scripted.sawDot, false);
    } finally {
      await gw.close();
      await scripted.close();
    }
  });

  for (const [code, reply] of [
    [452, '4.3.1 Insufficient system storage'],
    [554, '5.7.1 Content rejected downstream'],
  ] as const) {
    it(`downstream ${code} at end of data reaches the client as ${code}`, async () => {
      await withRelay({ sink: { dot: () => [code, reply] } }, async ({ gw }) => {
        const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage());
        assert.equal(text(r.data), `${code} ${reply}`);
        assert.equal(gw.events('message').at(-1)!.verdict, 'relay');
      });
    });
  }

  it('client disconnecting mid-DATA: the downstream transaction is dropped without "."', async () => {
    const scripted = await startScripted({});
    const gw = await startGateway(scripted.port);
    try {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: gw.port });
        socket.on('error', reject);
        let replies = 0;
        socket.on('data', (d: Buffer) => {
          replies += d
            .toString()
            .split('\r\n')
            .filter((l) => /^\d{3} /.test(l)).length;
          if (replies === 1) socket.write(`EHLO c\r\n${MAIL}\r\n${RCPT}\r\nDATA\r\n`);
          if (replies === 5) {
            socket.write('Subject: cut short\r\n\r\nhalf a mess');
            setTimeout(() => socket.destroy(), 100);
            setTimeout(resolve, 400);
          }
        });
      });
      assert.equal(scripted.sawDot, false);
      assert.ok(!scripted.commands.includes('DATA'), 'DATA must not reach the downstream for an unfinished message');
      assert.equal(gw.events('transaction_abandoned').length, 1);
      assert.equal(gw.gateway.activeTransactions, 0);
    } finally {
      await gw.close();
      await scripted.close();
    }
  });
});

describe('limits', function () {
  it('refuses a message past maxMessageSize with 552 5.3.4, and relays nothing', async () => {
    await withRelay({ policy: ['limits.maxMessageSize=64KB', 'spool.memoryLimit=16KB'] }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.withAttachment(200 * 1024));
      assert.match(text(r.data), /^552 5\.3\.4 /);
      assert.equal(sink.messages.length, 0);
      assert.ok(Number(gw.events('message').at(-1)!.size) > 64 * 1024);
    });
  });

  it('a spool that cannot be written: 451 4.3.0 once the client has sent its data, and nothing relayed', async () => {
    const notADirectory = path.join(mkdtempSync(path.join(tmpdir(), 'mailmoat-spool-')), 'file');
    writeFileSync(notADirectory, '');
    await withRelay({ policy: [`spool.dir=${notADirectory}/spool`, 'spool.memoryLimit=16KB'] }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.withAttachment(200 * 1024));
      assert.match(text(r.data), /^451 4\.3\.0 /);
      assert.equal(sink.messages.length, 0);
      assert.equal(gw.events('message').at(-1)!.verdict, 'error');
    });
  });

  it('refuses a declared SIZE past the limit at MAIL', async () => {
    await withRelay({ policy: ['limits.maxMessageSize=64KB'] }, async ({ gw }) => {
      const client = await connect(gw.port);
      assert.match(text(await client.command('MAIL FROM:<a@internal.test> SIZE=1000000')), /^552 5\.3\.4 /);
      await client.quit();
    });
  });

  it('answers 452 4.5.3 past maxRecipients', async () => {
    await withRelay({ policy: ['limits.maxRecipients=2'] }, async ({ gw }) => {
      const r = await transaction(gw.port, MAIL, ['RCPT TO:<a@o.test>', 'RCPT TO:<b@o.test>', 'RCPT TO:<c@o.test>'], messages.simpleMessage());
      assert.deepEqual(
        r.rcpts.map((x) => x.code),
        [250, 250, 452],
      );
      assert.match(text(r.rcpts[2]), /^452 4\.5\.3 /);
    });
  });

  it('answers 421 past maxClients', async () => {
    await withRelay({ policy: ['limits.maxClients=1'] }, async ({ gw }) => {
      const first = await connect(gw.port);
      const banner = await new Promise<string>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: gw.port });
        socket.once('data', (d: Buffer) => resolve(d.toString()));
        socket.once('error', reject);
      });
      assert.match(banner, /^421 /);
      await first.quit();
    });
  });

  it('advertises the ESMTP extensions a proxy behind Postfix must accept, and not AUTH', async () => {
    await withRelay({ policy: ['limits.maxMessageSize=10MB'] }, async ({ gw }) => {
      const client = await connect(gw.port);
      for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN', 'XFORWARD']) {
        assert.ok(client.extensions.has(ext), `${ext} advertised`);
      }
      assert.equal(client.extensions.get('SIZE'), String(10 * 1024 * 1024));
      assert.ok(!client.extensions.has('AUTH'));
      await client.quit();
    });
  });
});

describe('verdicts', function () {
  const rule = (action: string) => [`rules.headers=[{symbol: SUBJECT_BLOCKED, header: Subject, match: "^\\\\[blocked\\\\]", score: 1, action: ${action}}]`];

  it('a reject rule answers 550 5.7.1, sends RSET downstream, and never DATA', async () => {
    const scripted = await startScripted({});
    const gw = await startGateway(scripted.port, rule('reject'));
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage('[blocked] invoice'));
      assert.match(text(r.data), /^550 5\.7\.1 Message rejected by policy \[[0-9A-Z]{26}\]$/);
      assert.ok(scripted.commands.includes('RSET'));
      assert.ok(!scripted.commands.includes('DATA'));
      const line = gw.events('message').at(-1)!;
      assert.equal(line.verdict, 'reject');
      assert.deepEqual(line.symbols, ['SUBJECT_BLOCKED']);
      assert.equal(line.reason, 'SUBJECT_BLOCKED');
    } finally {
      await gw.close();
      await scripted.close();
    }
  });

  it('a defer rule answers 451 4.7.1', async () => {
    await withRelay({ policy: rule('defer') }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage('[BLOCKED] invoice'));
      assert.match(text(r.data), /^451 4\.7\.1 /);
      assert.equal(sink.messages.length, 0);
    });
  });

  it('RFC 2047-encoded headers are matched decoded', async () => {
    await withRelay({ policy: rule('reject') }, async ({ gw }) => {
      const encoded = '=?UTF-8?B?' + Buffer.from('[blocked] Rechnung').toString('base64') + '?=';
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage(encoded));
      assert.equal(r.data?.code, 550);
    });
  });

  it('a message that matches nothing is relayed', async () => {
    await withRelay({ policy: rule('reject') }, async ({ gw }) => {
      const r = await transaction(gw.port, MAIL, [RCPT], messages.simpleMessage('quarterly report'));
      assert.equal(r.data?.code, 250);
    });
  });
});
