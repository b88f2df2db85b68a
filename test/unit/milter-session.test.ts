// The milter session against our own MTA-side client on loopback: Postfix's captured conversation
// replayed (all at once and byte by byte), verdicts mapped to milter replies, no-reply negotiation,
// macros per stage, QUIT_NC, hooks at MAIL/RCPT, PROGRESS, and faults that end one connection only.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Act, decodeOptneg, Proto } from '../../src/milter/codec.js';
import type { EnvelopeContext } from '../../src/milter/session.js';
import { sha256 } from '../helpers/sink.js';
import {
  ABORT,
  envelopePackets,
  macro,
  messagePackets,
  MilterClient,
  OPTNEG_POSTFIX,
  optneg,
  packet,
  QUIT,
  QUIT_NC,
  show,
  traceMessage,
  traceSession,
  z,
} from '../helpers/milter-client.js';
import { startMilter, type RunningMilter } from '../helpers/milter-server.js';
import type { QuarantineMetadata } from '../../src/quarantine/store.js';

const subjectRule = (action: string) => `rules.headers=[{symbol: SUBJECT_HIT, header: Subject, match: "^hit", action: ${action}}]`;

async function negotiated(
  m: RunningMilter,
  offer: Buffer = OPTNEG_POSTFIX,
): Promise<{ client: MilterClient; version: number; actions: number; protocol: number }> {
  const client = await MilterClient.connect(m.port);
  client.send(offer);
  const reply = await client.read();
  assert.equal(String.fromCharCode(reply.cmd), 'O');
  return { client, ...decodeOptneg(reply.data) };
}

function simple(subject: string, body = 'hello\r\n'): Buffer {
  return Buffer.from(`From: Alice <alice@internal.test>\r\nTo: bob@outside.test\r\nSubject: ${subject}\r\nMessage-ID: <1@internal.test>\r\n\r\n${body}`);
}

describe('milter session', function () {
  let m: RunningMilter;
  let quarantineDir: string;

  beforeEach(() => {
    quarantineDir = mkdtempSync(path.join(tmpdir(), 'mailmoat-milter-q-'));
  });
  afterEach(async () => {
    await m?.close();
  });

  it("negotiates with Postfix's offer: version 6, ADDHDRS + SETSYMLIST, no-reply for every stage we do not decide, leading space, macro lists", async () => {
    m = await startMilter();
    const client = await MilterClient.connect(m.port);
    client.send(OPTNEG_POSTFIX);
    const reply = await client.read();
    const o = decodeOptneg(reply.data);
    assert.equal(o.version, 6);
    assert.equal(o.actions, Act.ADDHDRS | Act.SETSYMLIST);
    const nr = Proto.NR_CONN | Proto.NR_HELO | Proto.NR_MAIL | Proto.NR_RCPT | Proto.NR_DATA | Proto.NR_HDR | Proto.NR_EOH | Proto.NR_BODY | Proto.NR_UNKN;
    assert.equal(o.protocol, nr | Proto.HDR_LEADSPC);
    const lists = reply.data.subarray(12).toString('latin1');
    assert.match(lists, /\0\0\0\x05i \{client_addr\}\0/);
    assert.match(lists, /\{auth_authen\}/);
    client.close();
  });

  it('with sender rates on, MAIL is answered (a suspended or held sender is refused there); other stages stay no-reply', async () => {
    m = await startMilter(['rate.enabled=true']);
    const client = await MilterClient.connect(m.port);
    client.send(OPTNEG_POSTFIX);
    const o = decodeOptneg((await client.read()).data);
    assert.equal(o.protocol & Proto.NR_MAIL, 0);
    assert.equal(o.protocol & Proto.NR_RCPT, Proto.NR_RCPT);
    client.close();
  });

  it('replays the Postfix capture in one write: no reply until EOB, then CONTINUE; logs the message like the SMTP front end', async () => {
    m = await startMilter();
    const { client } = await negotiated(m);
    client.send(...traceSession({ leadingSpace: true }));
    const replies = await client.readFinal();
    assert.deepEqual(replies.map(show), ['c']);
    client.send(ABORT, ABORT, QUIT);
    await client.waitClosed();
    const [line] = await m.waitEvent('message');
    assert.equal(line.front, 'milter');
    assert.equal(line.verdict, 'relay');
    assert.equal(line.from, 'alice@src.test');
    assert.deepEqual(line.rcpt, ['bob@dst.test', 'carol@dst.test']);
    assert.equal(line.helo, 'client.example');
    assert.equal(line.client, '127.0.0.1');
    assert.equal(line.queueId, '7AE47212050');
    assert.equal(line.size, traceMessage().length);
    assert.equal(line.reply, 'continue');
    assert.match(String(line.id), /^[0-9A-Z]{26}$/);
    assert.equal(m.events('transaction_abandoned').length, 0);
  });

  it('the analyzers get the message rebuilt exactly (headers, folded lines, body cut inside CRLF): the quarantine copy shows it', async () => {
    m = await startMilter([subjectRule('quarantine'), `quarantine.dir=${quarantineDir}`]);
    const headers: [string, string][] = [
      ['From', 'alice@src.test'],
      ['Subject', 'hit me'],
      ['X-Folded', 'first\n\tsecond\n third'],
      ['X-Empty', ''],
    ];
    const body = [Buffer.from('line one\r'), Buffer.from('\n.dot\r\nbin\xe9ry\r\n', 'latin1'), Buffer.from('last')];
    const expected = Buffer.concat([
      Buffer.from('From: alice@src.test\r\nSubject: hit me\r\nX-Folded: first\r\n\tsecond\r\n third\r\nX-Empty: \r\n\r\n'),
      ...body,
    ]);
    const { client } = await negotiated(m);
    // with HDR_LEADSPC the value keeps its space; the empty header arrives as " " then
    client.send(...traceSession({ leadingSpace: true, headers, body }));
    const replies = await client.readFinal();
    assert.deepEqual(replies.map(show), ['d']);
    const [line] = await m.waitEvent('message');
    const id = String(line.id);
    assert.equal(line.quarantined, true);
    assert.equal(line.reply, `discard: quarantined as ${id}`);
    assert.equal(readFileSync(path.join(quarantineDir, `${id}.eml`)).toString('latin1'), expected.toString('latin1'));
    const meta = JSON.parse(readFileSync(path.join(quarantineDir, `${id}.json`), 'utf8')) as QuarantineMetadata;
    assert.equal(meta.sha256, sha256(expected));
    assert.deepEqual(meta.envelope, {
      mailFrom: 'alice@src.test',
      mailLine: 'MAIL FROM:<alice@src.test> SIZE=300 BODY=8BITMIME RET=HDRS ENVID=env123',
      rcptTo: ['bob@dst.test', 'carol@dst.test'],
      rcptLines: ['RCPT TO:<bob@dst.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@dst.test', 'RCPT TO:<carol@dst.test>'],
    });
    assert.deepEqual(meta.client, { address: '127.0.0.1', helo: 'client.example' });
  });

  it('the same conversation sent one byte per write gives the same reply', async () => {
    m = await startMilter();
    const client = await MilterClient.connect(m.port);
    await client.trickle(OPTNEG_POSTFIX);
    assert.equal(String.fromCharCode((await client.read()).cmd), 'O');
    await client.trickle(Buffer.concat(traceSession({ leadingSpace: true })));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    client.close();
  });

  it('reject → REPLYCODE 550 5.7.1 with our id; defer → 451 4.7.1', async () => {
    m = await startMilter([
      'rules.headers=[{symbol: R, header: Subject, match: "^reject", action: reject}, {symbol: D, header: Subject, match: "^defer", action: defer}]',
    ]);
    const { client } = await negotiated(m);
    client.send(...envelopePackets(), ...messagePackets(simple('reject me'), { leadingSpace: true }), packet('E'));
    const [r] = await client.readFinal();
    assert.match(show(r), /^y 550 5\.7\.1 Message rejected by policy \[[0-9A-Z]{26}\]$/);
    client.send(
      ABORT,
      ABORT,
      macro('M'),
      packet('M', z('<alice@internal.test>')),
      packet('R', z('<bob@outside.test>')),
      ...messagePackets(simple('defer me'), { leadingSpace: true }),
      packet('E'),
    );
    const [d] = await client.readFinal();
    assert.match(show(d), /^y 451 4\.7\.1 Message deferred by policy, try again later \[[0-9A-Z]{26}\]$/);
    const lines = await m.waitEvent('message', 2);
    assert.deepEqual(
      lines.map((l) => l.verdict),
      ['reject', 'defer'],
    );
    assert.match(String(lines[0].reply), /^550 5\.7\.1 Message rejected by policy/);
    client.close();
  });

  it('tag (and relay.verdictHeader) → ADDHEADER X-Mailmoat-Verdict (leading space, folded with LF) then CONTINUE', async () => {
    m = await startMilter([subjectRule('tag')]);
    const { client } = await negotiated(m);
    client.send(...envelopePackets(), ...messagePackets(simple('hit'), { leadingSpace: true }), packet('E'));
    const replies = await client.readFinal();
    assert.deepEqual(
      replies.map((p) => String.fromCharCode(p.cmd)),
      ['h', 'c'],
    );
    const [name, value] = replies[0].data.toString().split('\0');
    assert.equal(name, 'X-Mailmoat-Verdict');
    assert.match(value, /^ tag; score=0; symbols=SUBJECT_HIT;(\n\t| )id=[0-9A-Z]{26}$/);
    assert.ok(!value.includes('\r'));
    client.close();
    await m.close();

    m = await startMilter(['relay.verdictHeader=true']);
    const second = await negotiated(m);
    second.client.send(...envelopePackets(), ...messagePackets(simple('clean'), { leadingSpace: true }), packet('E'));
    const r2 = await second.client.readFinal();
    assert.deepEqual(
      r2.map((p) => String.fromCharCode(p.cmd)),
      ['h', 'c'],
    );
    assert.match(r2[0].data.toString(), /^X-Mailmoat-Verdict\0 relay; score=0; symbols=none;(\n\t| )id=/);
    second.client.close();
  });

  it('quarantine in mta-hold mode → QUARANTINE (q) with the reason, then CONTINUE; actions include 0x20', async () => {
    m = await startMilter([subjectRule('quarantine'), 'milter.quarantine=mta-hold', `quarantine.dir=${quarantineDir}`]);
    const { client, actions } = await negotiated(m);
    assert.equal(actions, Act.ADDHDRS | Act.QUARANTINE | Act.SETSYMLIST);
    client.send(...envelopePackets(), ...messagePackets(simple('hit'), { leadingSpace: true }), packet('E'));
    const replies = await client.readFinal();
    assert.deepEqual(
      replies.map((p) => String.fromCharCode(p.cmd)),
      ['q', 'c'],
    );
    assert.match(show(replies[0]), /^q Mailmoat: SUBJECT_HIT \[[0-9A-Z]{26}\]$/);
    assert.deepEqual(readdirSync(quarantineDir), []);
    client.close();
  });

  it('a quarantine copy that cannot be written answers 451 4.3.0, never DISCARD', async () => {
    m = await startMilter([subjectRule('quarantine'), 'quarantine.dir=/dev/null/quarantine']);
    const { client } = await negotiated(m);
    client.send(...envelopePackets(), ...messagePackets(simple('hit'), { leadingSpace: true }), packet('E'));
    const [r] = await client.readFinal();
    assert.match(show(r), /^y 451 4\.3\.0 /);
    await m.waitEvent('quarantine_failed');
    client.close();
  });

  it('a message over limits.maxMessageSize → 552 5.3.4 (not stored past the cap)', async () => {
    m = await startMilter(['limits.maxMessageSize=2KB']);
    const { client } = await negotiated(m);
    client.send(...envelopePackets(), ...messagePackets(simple('big', 'x'.repeat(5000) + '\r\n'), { leadingSpace: true, chunk: 1000 }), packet('E'));
    const [r] = await client.readFinal();
    assert.match(show(r), /^y 552 5\.3\.4 Message size exceeds fixed maximum message size 2048/);
    client.close();
  });

  it('an MTA without no-reply flags (version 2) gets CONTINUE for every event, and no macro lists', async () => {
    m = await startMilter();
    const { client, version, protocol, actions } = await negotiated(m, optneg(2, 0x3f, 0x7f));
    assert.deepEqual([version, protocol, actions], [2, 0, Act.ADDHDRS]);
    const packets = [
      ...envelopePackets(['<a@x.test>'][0], ['<b@y.test>', '<c@y.test>']),
      ...messagePackets(simple('old'), { leadingSpace: false }),
      packet('E'),
    ];
    client.send(...packets);
    const replies: string[] = [];
    // CONNECT, HELO, MAIL, RCPT ×2, DATA, HEADER ×4, EOH, BODY, EOB (macros never answered)
    for (let i = 0; i < 13; i++) replies.push(show(await client.read()));
    assert.deepEqual(replies, Array(13).fill('c'));
    const [line] = await m.waitEvent('message');
    assert.equal(line.size, simple('old').length);
    client.close();
  });

  it('ABORT twice after EOM, then the next message on the same connection; UNKNOWN needs no reply', async () => {
    m = await startMilter();
    const { client } = await negotiated(m);
    client.send(...traceSession({ leadingSpace: true }));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    client.send(ABORT, ABORT, macro('U'), packet('U', z('XYZZY frobnicate')), ABORT);
    client.send(
      macro('M', 'i', 'Q2'),
      packet('M', z('<carol@src.test>')),
      packet('R', z('<dave@dst.test>')),
      ...messagePackets(simple('second'), { leadingSpace: true }),
      packet('E'),
    );
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    const lines = await m.waitEvent('message', 2);
    assert.equal(lines[1].from, 'carol@src.test');
    assert.deepEqual(lines[1].rcpt, ['dave@dst.test']);
    assert.equal(lines[1].helo, 'client.example'); // connection info kept across ABORT
    client.close();
  });

  it('QUIT_NC: the socket is reused for a new SMTP session (connect info and macros reset, negotiation kept)', async () => {
    m = await startMilter();
    const { client } = await negotiated(m);
    client.send(...traceSession({ leadingSpace: true }));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    client.send(ABORT, ABORT, QUIT_NC);
    client.send(
      packet('C', Buffer.concat([z('other'), Buffer.from('U')])),
      packet('M', z('<x@y.test>')),
      packet('R', z('<z@y.test>')),
      ...messagePackets(simple('after nc'), { leadingSpace: true }),
      packet('E'),
    );
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    const lines = await m.waitEvent('message', 2);
    assert.equal(lines[1].helo, '');
    assert.equal(lines[1].client, '');
    assert.equal(lines[1].queueId, undefined);
    client.close();
  });

  it('MAIL/RCPT hooks: replies negotiated for those stages; per-recipient refusal; macros of a repeated stage cleared', async () => {
    const seen: { stage: string; rcptMailer?: string; j?: string; auth?: string }[] = [];
    m = await startMilter([], {
      hooks: {
        mail: (ctx: EnvelopeContext) => {
          seen.push({ stage: 'mail', rcptMailer: ctx.macro('{rcpt_mailer}'), j: ctx.macro('j'), auth: ctx.authenticated });
          return ctx.mailFrom === 'suspended@internal.test' ? { code: 451, enhanced: '4.7.1', text: 'Sender suspended, 100% sure' } : undefined;
        },
        rcpt: (ctx, rcpt) => {
          seen.push({ stage: 'rcpt', rcptMailer: ctx.macro('rcpt_mailer') });
          return rcpt.address.startsWith('no@') ? { code: 550, enhanced: '5.7.1', text: 'Not this one' } : undefined;
        },
      },
    });
    const { client, protocol } = await negotiated(m);
    assert.equal(protocol & (Proto.NR_MAIL | Proto.NR_RCPT), 0);
    client.send(macro('C', 'j', 'mx'), packet('C', Buffer.concat([z('h'), Buffer.from('U')])), packet('H', z('helo.test')));
    client.send(macro('M', '{auth_authen}', 'alice'), packet('M', z('<alice@internal.test>')));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    client.send(macro('R', '{rcpt_mailer}', 'smtp'), packet('R', z('<yes@outside.test>')));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    client.send(macro('R', '{rcpt_mailer}', 'smtp'), packet('R', z('<no@outside.test>')));
    assert.deepEqual((await client.readFinal()).map(show), ['y 550 5.7.1 Not this one']);
    client.send(...messagePackets(simple('two rcpts'), { leadingSpace: true }), packet('E'));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    const [line] = await m.waitEvent('message');
    assert.deepEqual(line.rcpt, ['yes@outside.test']);
    // the next MAIL: RCPT-stage macros of the last message are gone, CONNECT's stay
    client.send(ABORT, ABORT, macro('M'), packet('M', z('<suspended@internal.test>')));
    assert.deepEqual((await client.readFinal()).map(show), ['y 451 4.7.1 Sender suspended, 100%% sure']);
    assert.deepEqual(seen, [
      { stage: 'mail', rcptMailer: undefined, j: 'mx', auth: 'alice' },
      { stage: 'rcpt', rcptMailer: 'smtp' },
      { stage: 'rcpt', rcptMailer: 'smtp' },
      { stage: 'mail', rcptMailer: undefined, j: 'mx', auth: undefined },
    ]);
    client.close();
  });

  it('sends PROGRESS while a slow decision runs', async () => {
    m = await startMilter(['milter.progressInterval=50ms'], {
      hooks: { mail: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 280)) },
    });
    const { client } = await negotiated(m);
    client.send(packet('C', Buffer.concat([z('h'), Buffer.from('U')])), packet('M', z('<a@b.test>')));
    const replies = (await client.readFinal()).map(show);
    assert.equal(replies.at(-1), 'c');
    assert.ok(replies.filter((r) => r === 'p').length >= 3, replies.join(' '));
    client.close();
  });

  describe('faults end only that connection', () => {
    const stillServes = async () => {
      const { client } = await negotiated(m);
      client.send(...traceSession({ leadingSpace: true }));
      assert.deepEqual((await client.readFinal()).map(show), ['c']);
      client.close();
    };

    for (const [what, bytes] of [
      ['junk instead of packets', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ['a packet length of 0', Buffer.from([0, 0, 0, 0])],
      ['a packet over the size cap', Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x42])],
      ['a command before OPTNEG', packet('C', z('x'))],
    ] as [string, Buffer][]) {
      it(`${what}: closed; other connections keep working`, async () => {
        m = await startMilter();
        const other = await negotiated(m);
        const bad = await MilterClient.connect(m.port);
        bad.send(bytes);
        await bad.waitClosed();
        assert.equal(m.events('milter_protocol_error').length, 1);
        other.client.send(...traceSession({ leadingSpace: true }));
        assert.deepEqual((await other.client.readFinal()).map(show), ['c']);
        other.client.close();
        await stillServes();
      });
    }

    it('an unknown command or a malformed CONNECT after negotiation: closed', async () => {
      m = await startMilter();
      const a = await negotiated(m);
      a.client.send(packet('Z', z('what')));
      await a.client.waitClosed();
      const b = await negotiated(m);
      b.client.send(packet('C', Buffer.from('no-nul-anywhere')));
      await b.client.waitClosed();
      assert.equal(m.events('milter_protocol_error').length, 2);
      await stillServes();
    });

    it('the MTA disconnects mid-message: logged, spool dropped, the server keeps serving', async () => {
      m = await startMilter();
      const { client } = await negotiated(m);
      const packets = traceSession({ leadingSpace: true });
      client.send(...packets.slice(0, -3)); // up to the body, no EOB
      await new Promise((r) => setTimeout(r, 50));
      client.close();
      const [abandoned] = await m.waitEvent('transaction_abandoned');
      assert.equal(abandoned.front, 'milter');
      assert.equal(abandoned.from, 'alice@src.test');
      assert.equal(m.events('message').length, 0);
      await stillServes();
    });
  });

  it('listens on a UNIX socket too (and replaces a stale socket file)', async () => {
    const sock = path.join(mkdtempSync(path.join(tmpdir(), 'mailmoat-milter-sock-')), 'milter.sock');
    m = await startMilter([], { listen: `unix:${sock}` });
    assert.equal(m.address, `unix:${sock}`);
    const client = await MilterClient.connect(sock);
    client.send(OPTNEG_POSTFIX);
    assert.equal(String.fromCharCode((await client.read()).cmd), 'O');
    client.send(...traceSession({ leadingSpace: true }));
    assert.deepEqual((await client.readFinal()).map(show), ['c']);
    client.close();
  });

  it('drain: idle connections closed at once, a message in flight gets its reply first', async () => {
    m = await startMilter([], { hooks: { mail: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 200)) } });
    const idle = await negotiated(m);
    const busy = await negotiated(m);
    busy.client.send(packet('C', Buffer.concat([z('h'), Buffer.from('U')])), packet('M', z('<a@b.test>')));
    await new Promise((r) => setTimeout(r, 20));
    const drained = m.server.drain();
    await idle.client.waitClosed();
    assert.deepEqual((await busy.client.readFinal()).map(show), ['c']);
    busy.client.send(packet('R', z('<c@d.test>')), ...messagePackets(simple('late'), { leadingSpace: true }), packet('E'));
    await drained;
    await busy.client.waitClosed();
  });
});
