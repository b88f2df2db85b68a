// The milter codec, byte for byte against the Postfix 3.7.11 capture
// (../shared/reference/postfix-3.7-milter-trace.txt): every packet length in the capture, the
// decoded fields, our replies' exact bytes, reassembly however the bytes are cut, negotiation.
import assert from 'node:assert/strict';
import {
  Act,
  Cmd,
  decodeConnect,
  decodeEnvelope,
  decodeHeader,
  decodeMacro,
  decodeOptneg,
  encode,
  foldHeaderValue,
  MilterProtocolError,
  negotiate,
  PacketReader,
  Proto,
  replyText,
} from '../../src/milter/codec.js';
import { connectPacket, OPTNEG_POSTFIX, traceSession } from '../helpers/milter-client.js';

const hex = (b: Buffer) => b.toString('hex').toUpperCase();
const lenOf = (p: Buffer) => p.readUInt32BE(0);

describe('milter codec', function () {
  it("decodes Postfix's OPTNEG (00 00 00 0D 4F …): version 6, actions 0x1FF, protocol 0x1FFFFF", () => {
    const [p] = new PacketReader().push(OPTNEG_POSTFIX);
    assert.equal(p.cmd, Cmd.OPTNEG);
    assert.deepEqual(decodeOptneg(p.data), { version: 6, actions: 0x1ff, protocol: 0x1fffff });
  });

  it("encodes the capture's OPTNEG reply (actions 0x21, protocol 0, EOM macro list) byte for byte", () => {
    const bytes = encode.optneg({ version: 6, actions: 0x21, protocol: 0, macros: new Map([[5, ['i', '{client_addr}']]]) });
    assert.equal(hex(bytes), '000000214F000000060000002100000000' + '00000005' + hex(Buffer.from('i {client_addr}\0')));
  });

  it('encodes the replies of the capture: CONTINUE = 00 00 00 01 63, ADDHEADER X-Trace-Milter: seen', () => {
    assert.equal(hex(encode.continue()), '0000000163');
    assert.equal(
      hex(encode.addHeader('X-Trace-Milter', 'seen')),
      hex(Buffer.concat([Buffer.from([0, 0, 0, 21, 0x68]), Buffer.from('X-Trace-Milter\0seen\0')])),
    );
    assert.equal(hex(encode.discard()), '0000000164');
    assert.equal(hex(encode.progress()), '0000000170');
    assert.equal(hex(encode.quarantine('held')), '0000000671' + hex(Buffer.from('held\0')));
    assert.equal(hex(encode.insertHeader(0, 'X-A', 'b')), '0000000B69' + '00000000' + hex(Buffer.from('X-A\0b\0')));
  });

  it('every packet of the capture has the length Postfix sent (len= in the trace)', () => {
    const lens = traceSession().map(lenOf);
    // D C, C, D H, H, D M, M, D R, R, D R, R, D T, T, (D L, L)×5, D N, N, D B, B, D E, E
    assert.deepEqual(lens, [111, 24, 2, 16, 78, 63, 76, 65, 92, 18, 16, 1, 16, 21, 16, 17, 16, 20, 16, 55, 16, 44, 16, 1, 40, 41, 40, 1]);
  });

  it('decodes the capture: macros with braces, CONNECT with family and port, MAIL/RCPT arguments, headers', () => {
    const packets = new PacketReader().push(Buffer.concat(traceSession()));
    assert.equal(packets.length, 28);
    const c = decodeMacro(packets[0].data);
    assert.equal(c.stage, 'C');
    assert.deepEqual(
      [...c.macros],
      [
        ['j', 'mx.test.local'],
        ['{daemon_name}', 'mx.test.local'],
        ['{daemon_addr}', '127.0.0.1'],
        ['v', 'Postfix 3.7.11'],
        ['_', 'localhost [127.0.0.1]'],
      ],
    );
    assert.deepEqual(decodeConnect(packets[1].data), { hostname: 'localhost', family: '4', port: 0xc3a7, address: '127.0.0.1' });
    assert.deepEqual(decodeMacro(packets[2].data), { stage: 'H', macros: new Map() });
    assert.deepEqual(decodeEnvelope(packets[5].data, 'MAIL'), {
      address: '<alice@src.test>',
      args: ['SIZE=300', 'BODY=8BITMIME', 'RET=HDRS', 'ENVID=env123'],
    });
    assert.deepEqual(decodeEnvelope(packets[7].data, 'RCPT'), { address: '<bob@dst.test>', args: ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;bob@dst.test'] });
    assert.equal(decodeMacro(packets[8].data).macros.get('i'), '7AE47212050');
    const h = decodeHeader(packets[13].data);
    assert.equal(h.name.toString(), 'From');
    assert.equal(h.value.toString(), 'alice@src.test');
    assert.equal(packets[25].cmd, Cmd.BODY);
    assert.equal(packets[25].data.toString(), 'line one\r\n.leading dot line\r\nlast line\r\n');
    assert.equal(packets[27].cmd, Cmd.BODYEOB);
    assert.equal(packets[27].data.length, 0);
  });

  it('CONNECT: unknown family carries no port or address; IPv6 drops the IPv6: prefix; unix socket', () => {
    assert.deepEqual(decodeConnect(Buffer.from('host\0U')), { hostname: 'host', family: 'U', port: 0, address: '' });
    assert.deepEqual(decodeConnect(connectPacket('h', 'IPv6:2001:db8::1', 25, '6').subarray(5)), {
      hostname: 'h',
      family: '6',
      port: 25,
      address: '2001:db8::1',
    });
    assert.deepEqual(decodeConnect(connectPacket('h', '/run/sock', 0, 'L').subarray(5)), { hostname: 'h', family: 'L', port: 0, address: '/run/sock' });
    assert.throws(() => decodeConnect(Buffer.from('host\0X\0\0a\0')), MilterProtocolError);
    assert.throws(() => decodeConnect(Buffer.from('host')), MilterProtocolError);
  });

  it('an empty header value arrives as name\\0\\0; a header without its NUL is an error', () => {
    assert.equal(decodeHeader(Buffer.from('X-Empty\0\0')).value.length, 0);
    assert.throws(() => decodeHeader(Buffer.from('X-Empty\0v')), MilterProtocolError);
    assert.throws(() => decodeHeader(Buffer.from('X\0a\0b\0')), MilterProtocolError);
  });

  it('reassembles however the bytes are cut: all at once, byte by byte, random cuts', () => {
    const stream = Buffer.concat([OPTNEG_POSTFIX, ...traceSession()]);
    const whole = new PacketReader().push(stream);
    assert.equal(whole.length, 29);
    const bytewise = new PacketReader();
    const got: string[] = [];
    for (let i = 0; i < stream.length; i++)
      got.push(...bytewise.push(stream.subarray(i, i + 1)).map((p) => hex(Buffer.concat([Buffer.from([p.cmd]), p.data]))));
    assert.deepEqual(
      got,
      whole.map((p) => hex(Buffer.concat([Buffer.from([p.cmd]), p.data]))),
    );
    let seed = 7;
    for (let round = 0; round < 50; round++) {
      const reader = new PacketReader();
      const out: number[] = [];
      for (let i = 0; i < stream.length;) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const n = 1 + (seed % 40);
        out.push(...reader.push(stream.subarray(i, i + n)).map((p) => p.cmd));
        i += n;
      }
      assert.deepEqual(
        out,
        whole.map((p) => p.cmd),
      );
      assert.equal(reader.pending, 0);
    }
  });

  it('refuses a length of 0 and one over the cap, before buffering the data', () => {
    assert.throws(() => new PacketReader().push(Buffer.from([0, 0, 0, 0])), /length 0/);
    assert.throws(() => new PacketReader(1024).push(Buffer.from([0, 0, 0x10, 0, 0x42])), /exceeds the limit of 1024/);
    assert.throws(() => new PacketReader().push(Buffer.from('GET / HTTP/1.1\r\n')), MilterProtocolError);
  });

  it('REPLYCODE text: code, enhanced code, % doubled, multi-line with ddd-, and checks classes', () => {
    assert.equal(replyText(550, '5.7.1', 'Message rejected by policy [X]'), '550 5.7.1 Message rejected by policy [X]');
    assert.equal(replyText(451, '4.7.1', '100% sure'), '451 4.7.1 100%% sure');
    assert.equal(replyText(550, '5.7.1', ['line one', 'line two']), '550-5.7.1 line one\r\n550 5.7.1 line two');
    assert.equal(replyText(550, '5.7.1', 'a\r\nb'), '550 5.7.1 a b');
    assert.throws(() => replyText(250, '2.0.0', 'ok'), MilterProtocolError);
    assert.throws(() => replyText(550, '4.7.1', 'mismatch'), MilterProtocolError);
    assert.equal(hex(encode.replyCode(replyText(550, '5.7.1', 'x'))), hex(Buffer.concat([Buffer.from([0, 0, 0, 13, 0x79]), Buffer.from('550 5.7.1 x\0')])));
  });

  it('folds added header values with LF + TAB, never CRLF', () => {
    const value = 'quarantine; score=25; symbols=OFFICE_MACRO,OFFICE_MACRO_AUTOEXEC,OFFICE_MACRO_SUSPICIOUS; id=01J0000000000000000000000';
    const folded = foldHeaderValue('X-Mailmoat-Verdict', value);
    assert.ok(!folded.includes('\r'));
    assert.equal(folded.replace(/\n\t/g, ' '), value);
    for (const [i, line] of folded.split('\n').entries()) assert.ok((i === 0 ? 'X-Mailmoat-Verdict: '.length : 0) + line.length <= 78, line);
    assert.equal(foldHeaderValue('X', 'short'), 'short');
  });

  describe('negotiation', () => {
    const wanted = {
      actions: Act.ADDHDRS,
      protocol: Proto.NR_CONN | Proto.NR_HELO | Proto.NR_HDR | Proto.NR_BODY | Proto.HDR_LEADSPC,
      macros: new Map([[5, ['i']]]),
    };

    it("Postfix's offer: version 6, our actions plus SETSYMLIST, our protocol flags, the macro lists", () => {
      const n = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff }, wanted);
      assert.deepEqual(n, { version: 6, actions: Act.ADDHDRS | Act.SETSYMLIST, protocol: wanted.protocol, macros: wanted.macros });
    });

    it('an older MTA: min(version), only the protocol flags it offered, no macro lists without SETSYMLIST', () => {
      const n = negotiate({ version: 2, actions: 0x0f, protocol: 0x7f }, wanted);
      assert.equal(n.version, 2);
      assert.equal(n.actions, Act.ADDHDRS);
      assert.equal(n.protocol, 0);
      assert.equal(n.macros.size, 0);
      assert.equal(negotiate({ version: 6, actions: 0, protocol: 0 }, wanted).actions, Act.ADDHDRS); // 0: the v1 defaults
    });

    it('a newer MTA gets our version 6; version < 2 and missing actions are protocol errors', () => {
      assert.equal(negotiate({ version: 7, actions: 0x1ff, protocol: 0x1fffff }, wanted).version, 6);
      assert.throws(() => negotiate({ version: 1, actions: 0x1ff, protocol: 0 }, wanted), MilterProtocolError);
      assert.throws(() => negotiate({ version: 6, actions: Act.CHGBODY, protocol: 0 }, wanted), /0x1/);
      assert.throws(() => decodeOptneg(Buffer.alloc(8)), MilterProtocolError);
    });
  });
});
