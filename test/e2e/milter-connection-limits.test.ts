// The milter's connection bounds, against our MTA-side client on real sockets: connections overall
// and per peer address (a refused one is answered 4xx at CONNECT, so the MTA tempfails that session
// instead of applying milter_default_action), a packet that has begun and does not complete, and a
// connection that never starts its SMTP session. Bounds are set small; times only checked against them.
import assert from 'node:assert/strict';
import { Proto, decodeOptneg } from '../../src/milter/codec.js';
import { connectPacket, macro, MilterClient, OPTNEG_POSTFIX, packet, show, traceSession } from '../helpers/milter-client.js';
import { startMilter, type RunningMilter } from '../helpers/milter-server.js';

async function negotiated(m: RunningMilter, from = '127.0.0.1'): Promise<{ client: MilterClient; protocol: number }> {
  const client = await MilterClient.connect(m.port, from);
  client.send(OPTNEG_POSTFIX);
  const reply = await client.read();
  assert.equal(String.fromCharCode(reply.cmd), 'O');
  return { client, protocol: decodeOptneg(reply.data).protocol };
}

/** A whole session, CONNECT to EOB, on a negotiated connection: the final replies. */
async function wholeSession(client: MilterClient): Promise<string[]> {
  client.send(...traceSession({ leadingSpace: true }));
  return (await client.readFinal()).map(show);
}

const CONNECT = [macro('C', 'j', 'mx.test.local'), connectPacket('client.example', '192.0.2.7', 40000)];

describe('connection bounds (milter)', function () {
  let m: RunningMilter;
  afterEach(async () => {
    await m?.close();
  });

  it('past maxConnections: CONNECT gets 451 4.3.2 (the MTA tempfails the session), then the connection closes; the others keep working', async () => {
    m = await startMilter(['milter.maxConnections=2']);
    const a = await negotiated(m);
    const b = await negotiated(m);
    const over = await negotiated(m);
    assert.equal(over.protocol & Proto.NR_CONN, 0, 'the MTA must wait for our answer to CONNECT');
    assert.ok(a.protocol & Proto.NR_CONN, 'admitted connections are not asked to wait at CONNECT');
    over.client.send(...CONNECT);
    assert.equal(show(await over.client.read()), 'y 451 4.3.2 Mail filter busy, try again later');
    await over.client.waitClosed();
    assert.equal(m.events('milter_refused').length, 1);
    assert.equal(m.events('milter_refused')[0].bound, 'maxConnections');

    assert.deepEqual(await wholeSession(a.client), ['c']);
    // a connection that ends frees its place
    b.client.close();
    await new Promise((r) => setTimeout(r, 100));
    const c = await negotiated(m);
    assert.deepEqual(await wholeSession(c.client), ['c']);
    a.client.close();
    c.client.close();
  });

  it('maxConnectionsPerAddress: a second connection from one address is refused, one from another address is not', async () => {
    m = await startMilter(['milter.maxConnectionsPerAddress=1']);
    const first = await negotiated(m, '127.0.0.1');
    const second = await negotiated(m, '127.0.0.1');
    const other = await negotiated(m, '127.0.0.2');
    second.client.send(...CONNECT);
    assert.match(show(await second.client.read()), /^y 451 4\.3\.2 /);
    await second.client.waitClosed();
    assert.deepEqual(await wholeSession(first.client), ['c']);
    assert.deepEqual(await wholeSession(other.client), ['c']);
    assert.equal(m.events('milter_refused')[0].bound, 'maxConnectionsPerAddress');
    first.client.close();
    other.client.close();
  });

  it('a packet that stops half way: closed after packetTimeout, the message in flight abandoned and never judged', async () => {
    m = await startMilter(['milter.packetTimeout=500ms']);
    const { client } = await negotiated(m);
    const packets = traceSession({ leadingSpace: true });
    client.send(...packets.slice(0, -3)); // up to the body, no EOB
    const started = Date.now();
    client.send(packets.at(-3)!.subarray(0, 7)); // the start of the next packet, and no more
    await client.waitClosed(5000);
    assert.ok(Date.now() - started >= 500, 'not before the bound');
    const [timeout] = await m.waitEvent('milter_timeout');
    assert.equal(timeout.bound, 'packet');
    const [abandoned] = await m.waitEvent('transaction_abandoned');
    assert.equal(abandoned.from, 'alice@src.test');
    assert.equal(m.events('message').length, 0);
  });

  it('a packet dripped a byte at a time is closed after packetTimeout although bytes keep coming; other connections are served meanwhile', async () => {
    m = await startMilter(['milter.packetTimeout=500ms']);
    const slow = await negotiated(m);
    const packets = traceSession({ leadingSpace: true });
    slow.client.send(...packets.slice(0, 2)); // CONNECT
    const body = packet('B', Buffer.alloc(200, 'x')); // 20 s at this pace
    const started = Date.now();
    const dripping = (async () => {
      for (let i = 0; i < body.length && !slow.client.closed; i++) {
        slow.client.socket.write(body.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const fast = await negotiated(m);
    assert.deepEqual(await wholeSession(fast.client), ['c']);
    await slow.client.waitClosed(5000);
    await dripping;
    assert.ok(Date.now() - started >= 500);
    assert.equal((await m.waitEvent('milter_timeout'))[0].bound, 'packet');
    fast.client.close();
  });

  it('connectTimeout: a connection that does not start a session is closed; after CONNECT, silence is the MTA’s to bound', async () => {
    m = await startMilter(['milter.connectTimeout=600ms']);
    const silent = await MilterClient.connect(m.port);
    const negotiatedOnly = await negotiated(m);
    const inSession = await negotiated(m);
    inSession.client.send(...CONNECT);
    await silent.waitClosed(5000);
    await negotiatedOnly.client.waitClosed(5000);
    assert.deepEqual(
      m.events('milter_timeout').map((e) => e.bound),
      ['connect', 'connect'],
    );
    await new Promise((r) => setTimeout(r, 1200)); // well past the bound, idle inside a session
    assert.equal(inSession.client.closed, false);
    const rest = traceSession({ leadingSpace: true }).slice(2); // HELO ... EOB
    inSession.client.send(...rest);
    assert.deepEqual((await inSession.client.readFinal()).map(show), ['c']);
    inSession.client.close();
  });

  it('a refused connection that never gets to CONNECT does not linger past connectTimeout', async () => {
    m = await startMilter(['milter.maxConnections=1', 'milter.connectTimeout=300ms']);
    const held = await negotiated(m);
    held.client.send(...CONNECT);
    const refused = await MilterClient.connect(m.port);
    await refused.waitClosed(5000);
    assert.equal(m.events('milter_refused').length, 1);
    assert.equal(held.client.closed, false);
    held.client.close();
  });
});
