// Slow and idle clients cannot hold the gateway's slots: connections per client address, a bound on
// each command line and on the DATA phase (time and rate), and a limit on commands that lead to no
// message. Real sockets from two loopback addresses (127.0.0.1, 127.0.0.2), a real gateway and a
// recording downstream. Bounds are set small by the policy; times are only checked against them.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RawClient } from '../helpers/raw-client.js';
import { withRelay } from '../helpers/relay.js';
import { startScripted } from '../helpers/scripted.js';
import { startGateway } from '../helpers/gateway.js';
import * as messages from '../fixtures/messages.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';
/** 127.0.0.x are direct clients here, not an MTA in front */
const DIRECT = 'xforwardHosts=[]';

/** EHLO, MAIL, RCPT, DATA, the message, QUIT, from `from`; the reply to the final dot. */
async function sendMessage(port: number, from: string, subject = 'ordinary'): Promise<string> {
  const client = await RawClient.connect(port, from);
  try {
    assert.match(client.greeting, /^220 /);
    assert.match(await client.command('EHLO ordinary.example'), /^250 /);
    assert.match(await client.command(MAIL), /^250 /);
    assert.match(await client.command(RCPT), /^250 /);
    assert.match(await client.command('DATA'), /^354 /);
    const count = client.replies.length;
    client.write(Buffer.concat([messages.simpleMessage(subject), Buffer.from('.\r\n')]));
    return await client.reply(10000, count);
  } finally {
    client.close();
  }
}

/** A client that is in a transaction and has been told 354: ready for message bytes. */
async function inData(port: number, from = '127.0.0.1'): Promise<RawClient> {
  const client = await RawClient.connect(port, from);
  for (const line of ['EHLO slow.example', MAIL, RCPT]) assert.match(await client.command(line), /^250 /);
  assert.match(await client.command('DATA'), /^354 /);
  return client;
}

describe('connection bounds (SMTP)', function () {
  it('a slowloris from one address holds at most maxClientsPerIp slots; an ordinary client from another address is served at once', async () => {
    const policy = [DIRECT, 'limits.maxClients=8', 'limits.maxClientsPerIp=3', 'timeouts.command=1500ms'];
    await withRelay({ policy }, async ({ gw, sink }) => {
      const attackers = await Promise.all(Array.from({ length: 8 }, () => RawClient.connect(gw.port, '127.0.0.1')));
      const admitted = attackers.filter((a) => a.greeting.startsWith('220 '));
      const refused = attackers.filter((a) => !a.greeting.startsWith('220 '));
      assert.equal(admitted.length, 3);
      for (const r of refused) assert.match(r.greeting, /^421 4\.7\.0 Too many connections from your address/);
      await Promise.all(refused.map((r) => r.waitClosed()));
      const started = Date.now();
      const dripping = admitted.map((a) => a.drip('EHLO slowloris.example\r\n', 100));

      // while the three drip, a client from 127.0.0.2 sends a message
      assert.match(await sendMessage(gw.port, '127.0.0.2'), /^250 /);
      assert.equal(sink.messages.length, 1);
      assert.ok(
        admitted.every((a) => !a.closed),
        'the slowloris connections are still within their bound',
      );

      // and each dripping connection is cut once its line is older than timeouts.command
      await Promise.all(admitted.map((a) => a.waitClosed()));
      await Promise.all(dripping);
      for (const a of admitted) {
        assert.match(a.last, /^421 4\.4\.2 Command line not complete after \d+s, closing connection$/);
        assert.ok(a.closedAt - started >= 1500, 'not before the bound');
      }
      assert.equal(gw.events('client_refused').length, 5);
      assert.deepEqual(
        gw.events('client_timeout').map((e) => e.bound),
        ['command', 'command', 'command'],
      );
    });
  });

  it('an address in xforwardHosts (an MTA in front, speaking for many clients) is not limited per address; others are', async () => {
    const policy = ['xforwardHosts=[127.0.0.2/32]', 'limits.maxClientsPerIp=2'];
    await withRelay({ policy }, async ({ gw }) => {
      const mta = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(gw.port, '127.0.0.2')));
      assert.deepEqual(
        mta.map((c) => c.greeting.slice(0, 4)),
        ['220 ', '220 ', '220 ', '220 ', '220 '],
      );
      const direct = [];
      for (let i = 0; i < 3; i++) direct.push(await RawClient.connect(gw.port, '127.0.0.1'));
      assert.deepEqual(
        direct.map((c) => (c.greeting.startsWith('220 ') ? '220' : c.greeting.slice(0, 9))),
        ['220', '220', '421 4.7.0'],
      );
      // a slot given back is a slot free again
      direct[0].close();
      await new Promise((r) => setTimeout(r, 100));
      const again = await RawClient.connect(gw.port, '127.0.0.1');
      assert.match(again.greeting, /^220 /);
      for (const c of [...mta, ...direct, again]) c.close();
    });
  });

  it('maxClientsPerIp is read from the policy in force: a reload applies to the next connection', async () => {
    await withRelay({ policy: [DIRECT, 'limits.maxClientsPerIp=null'] }, async ({ gw }) => {
      const open = await Promise.all(Array.from({ length: 3 }, () => RawClient.connect(gw.port, '127.0.0.1')));
      assert.ok(open.every((c) => c.greeting.startsWith('220 ')));
      gw.loaded.policy = { ...gw.loaded.policy, limits: { ...gw.loaded.policy.limits, maxClientsPerIp: 3 } };
      const fourth = await RawClient.connect(gw.port, '127.0.0.1');
      assert.match(fourth.greeting, /^421 4\.7\.0 /);
      for (const c of open) c.close();
    });
  });

  it('with every slot taken, a new client gets the slot of the connection stalled longest past timeouts.stalledWhenFull', async () => {
    const policy = [DIRECT, 'limits.maxClients=4', 'limits.maxClientsPerIp=null', 'timeouts.stalledWhenFull=1s'];
    await withRelay({ policy }, async ({ gw, sink }) => {
      const attackers = await Promise.all(Array.from({ length: 4 }, () => RawClient.connect(gw.port, '127.0.0.1')));
      const dripping = attackers.map((a) => a.drip('EHLO slowloris.example\r\n', 100));
      // nobody has stalled long enough yet: the newcomer is told to come back
      const early = await RawClient.connect(gw.port, '127.0.0.2');
      assert.match(early.greeting, /^421 .*Too many connected clients/);
      early.close();
      await new Promise((r) => setTimeout(r, 1300));
      assert.match(await sendMessage(gw.port, '127.0.0.2'), /^250 /);
      assert.equal(sink.messages.length, 1);
      const taken = attackers.filter((a) => a.closed);
      assert.equal(taken.length, 1, 'one slot was taken, from one stalled connection');
      assert.match(taken[0].last, /^421 4\.4\.2 Connection stalled for \d+s while all slots are taken, closing connection$/);
      assert.deepEqual(
        gw.events('client_timeout').map((e) => e.bound),
        ['stalled'],
      );
      for (const a of attackers) a.close();
      await Promise.all(dripping);
    });
  });

  it('attackers from several addresses cannot take stalled slots from each other; a client with a clean record can', async () => {
    const policy = [DIRECT, 'limits.maxClients=2', 'timeouts.command=1s', 'timeouts.stalledWhenFull=300ms'];
    await withRelay({ policy }, async ({ gw, sink }) => {
      const drip = (c: RawClient) => void c.drip('EHLO slowloris.example\r\n', 100).catch(() => undefined);
      // 127.0.1.1 and 127.0.1.2 drip until timeouts.command cuts them
      const first = await Promise.all(['127.0.1.1', '127.0.1.2'].map((from) => RawClient.connect(gw.port, from)));
      first.forEach(drip);
      await Promise.all(first.map((c) => c.waitClosed()));
      // 127.0.1.2 comes back and 127.0.1.3 joins: every slot is taken by a dripper again
      const now = await Promise.all(['127.0.1.2', '127.0.1.3'].map((from) => RawClient.connect(gw.port, from)));
      now.forEach(drip);
      await new Promise((r) => setTimeout(r, 500)); // both stalled past 300 ms
      // 127.0.1.1, cut a moment ago, would take a slot from an address that holds no more than it does
      const back = await RawClient.connect(gw.port, '127.0.1.1');
      assert.match(back.greeting, /^421 .*Too many connected clients/);
      assert.ok(now.every((c) => !c.closed));
      // a client whose address holds nothing takes the slot of the address that holds most, and is served
      assert.match(await sendMessage(gw.port, '127.0.0.2'), /^250 /);
      assert.equal(sink.messages.length, 1);
      assert.deepEqual(
        now.map((c) => c.closed),
        [true, false],
      );
      for (const c of now) c.close();
    });
  });

  it('the connections of an MTA in front (xforwardHosts) are never taken for a new client', async () => {
    const policy = ['xforwardHosts=[127.0.0.1/32]', 'limits.maxClients=2', 'timeouts.stalledWhenFull=500ms'];
    await withRelay({ policy }, async ({ gw }) => {
      const mta = await Promise.all(Array.from({ length: 2 }, () => RawClient.connect(gw.port, '127.0.0.1')));
      await new Promise((r) => setTimeout(r, 800)); // silent well past the bound
      const newcomer = await RawClient.connect(gw.port, '127.0.0.2');
      assert.match(newcomer.greeting, /^421 .*Too many connected clients/);
      assert.ok(mta.every((c) => !c.closed));
      for (const c of mta) c.close();
    });
  });

  it('a command line dripped past timeouts.command: 421 4.4.2, the transaction in flight is dropped, the downstream sees no message', async () => {
    // the abandoned transaction's downstream connection is RSET and pooled, then closed when idle for
    // timeouts.downstreamIdle: 1s here, well inside the wait below (the default 5s raced it)
    await withRelay({ policy: ['timeouts.command=1s', 'timeouts.downstreamIdle=1s'] }, async ({ gw, sink }) => {
      const client = await RawClient.connect(gw.port);
      for (const line of ['EHLO slow.example', MAIL, RCPT]) assert.match(await client.command(line), /^250 /);
      const started = Date.now();
      await client.drip('DATA\r\n', 400);
      await client.waitClosed();
      assert.match(client.last, /^421 4\.4\.2 Command line not complete after \d+s, closing connection$/);
      assert.ok(client.closedAt - started >= 1000);
      assert.equal(sink.mails.length, 1, 'the transaction had reached the downstream');
      assert.equal(sink.messages.length, 0, 'but no message did');
      const [timeout] = gw.events('client_timeout');
      assert.equal(timeout.bound, 'command');
      assert.equal(timeout.inTransaction, true);
      await until(() => gw.events('transaction_abandoned').length === 1);
      await until(() => sink.closedConnections === sink.connections, 'the downstream session is closed, never given "."');
      assert.equal(gw.gateway.activeTransactions, 0);
    });
  });

  it('DATA slower than minDataRate after the grace (timeouts.client): 421 4.4.2, nothing relayed or quarantined', async () => {
    const quarantine = mkdtempSync(path.join(tmpdir(), 'mailmoat-slow-q-'));
    const policy = ['timeouts.client=1s', 'limits.minDataRate=200', `quarantine.dir=${quarantine}`];
    await withRelay({ policy }, async ({ gw, sink }) => {
      const client = await inData(gw.port);
      const started = Date.now();
      // ten bytes a second, well under 200: the idle timeout never fires, the rate bound does
      await client.drip(messages.simpleMessage('trickled'), 100);
      await client.waitClosed();
      assert.match(client.last, /^421 4\.4\.2 Message data too slow \(\d+ bytes in \d+s, minimum 200 bytes\/s\), closing connection$/);
      assert.ok(client.closedAt - started >= 1000);
      assert.equal(sink.messages.length, 0);
      assert.deepEqual(readdirSync(quarantine), []);
      assert.equal(gw.events('client_timeout')[0].bound, 'data_rate');
      await until(() => gw.gateway.activeTransactions === 0);
    });
  });

  it('DATA longer than timeouts.data, even at a good rate: 421 4.4.2, nothing relayed', async () => {
    const policy = ['timeouts.data=1s', 'limits.minDataRate=1'];
    await withRelay({ policy }, async ({ gw, sink }) => {
      const client = await inData(gw.port);
      const started = Date.now();
      const body = Buffer.alloc(20_000, 'a\r\n');
      for (let i = 0; i < body.length && !client.closed; i += 500) {
        client.write(body.subarray(i, i + 500));
        await new Promise((r) => setTimeout(r, 100));
      }
      await client.waitClosed();
      assert.match(client.last, /^421 4\.4\.2 Message data not complete after \d+s, closing connection$/);
      assert.ok(client.closedAt - started >= 1000);
      assert.equal(sink.messages.length, 0);
      assert.equal(gw.events('client_timeout')[0].bound, 'data');
    });
  });

  it('a slow client above minDataRate is served, however long past the grace it takes', async () => {
    const policy = ['timeouts.client=500ms', 'limits.minDataRate=1000'];
    await withRelay({ policy }, async ({ gw, sink }) => {
      const client = await inData(gw.port);
      const message = messages.simpleMessage('steady', 'x'.repeat(6000));
      const count = client.replies.length;
      // 4 KB/s for ~1.5 s: past the 500 ms grace, but four times the floor
      for (let i = 0; i < message.length; i += 400) {
        client.write(message.subarray(i, i + 400));
        await new Promise((r) => setTimeout(r, 100));
      }
      client.write('.\r\n');
      assert.match(await client.reply(10000, count), /^250 /);
      assert.equal(sink.messages.length, 1);
      assert.equal(gw.events('client_timeout').length, 0);
      client.close();
    });
  });

  it('junk: NOOP, HELP, VRFY and refused commands past maxJunkCommands get 421 4.7.0', async () => {
    await withRelay({ policy: ['limits.maxJunkCommands=5'] }, async ({ gw }) => {
      const client = await RawClient.connect(gw.port);
      const replies = [];
      for (const line of ['EHLO junk.example', 'NOOP', 'HELP', RCPT, 'VRFY bob', 'NOOP']) replies.push(await client.command(line));
      assert.deepEqual(
        replies.map((r) => r.slice(0, 3)),
        ['250', '250', '214', '503', '252', '421'],
      );
      assert.equal(replies.at(-1), '421 4.7.0 Too many commands without a message, closing connection');
      await client.waitClosed();
      assert.equal(gw.events('client_junk').length, 1);
    });
  });

  it('the junk count starts again after each message: a long session with RSET and NOOP between messages is never cut', async () => {
    await withRelay({ policy: ['limits.maxJunkCommands=4'] }, async ({ gw, sink }) => {
      const client = await RawClient.connect(gw.port);
      assert.match(await client.command('EHLO busy.example'), /^250 /);
      for (let i = 0; i < 4; i++) {
        for (const line of ['RSET', 'NOOP', 'NOOP']) assert.match(await client.command(line), /^250 /);
        for (const line of [MAIL, RCPT]) assert.match(await client.command(line), /^250 /);
        assert.match(await client.command('DATA'), /^354 /);
        const count = client.replies.length;
        client.write(Buffer.concat([messages.simpleMessage(`message ${i}`), Buffer.from('.\r\n')]));
        assert.match(await client.reply(10000, count), /^250 /);
      }
      assert.match(await client.command('QUIT'), /^221 /);
      assert.equal(sink.messages.length, 4);
    });
  });

  it('time the gateway makes the client wait does not count: a line pipelined behind a slow downstream reply', async () => {
    const scripted = await startScripted({ delays: { MAIL: 1500 } });
    const gw = await startGateway(scripted.port, ['timeouts.command=500ms']);
    try {
      const client = await RawClient.connect(gw.port);
      assert.match(await client.command('EHLO pipelining.example'), /^250 /);
      // MAIL, and half of the RCPT line behind it: the half line waits while the gateway waits
      const count = client.replies.length;
      client.write(`${MAIL}\r\nRCPT TO:<bob@outs`);
      assert.match(await client.reply(10000, count), /^250 /);
      client.write('ide.test>\r\n');
      assert.match(await client.reply(10000, count + 1), /^250 /);
      assert.equal(gw.events('client_timeout').length, 0);
      client.close();
    } finally {
      await gw.close();
      await scripted.close();
    }
  });
});

async function until(check: () => boolean, what = 'condition', timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
