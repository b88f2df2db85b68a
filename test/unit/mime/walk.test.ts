// The MIME walk and the leaf selection on their own (no worker pool): which leaves come out,
// decoded how, named how, and which of them go to the engine.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Encoding from 'encoding-japanese';
import iconv from 'iconv-lite';
import { walkMessage, type Leaf, type Problem } from '../../../src/inspect/mime/walk.js';
import { scanMessage } from '../../../src/inspect/mime/scan.js';
import type { Finding } from '../../../src/inspect/finding.js';
import { buildPlainCfb } from '../../fixtures/office/container-builders.js';
import { uuencode } from '../../fixtures/mime/uuencode.js';

const LIMIT = 25 * 1024 * 1024;
const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');

async function walk(message: string | Buffer, maxHeaderBytes = LIMIT): Promise<{ leaves: Leaf[]; problems: Problem[] }> {
  const leaves: Leaf[] = [];
  const problems: Problem[] = [];
  for await (const item of walkMessage(Buffer.from(message), { maxHeaderBytes })) {
    if (item.leaf) leaves.push(item.leaf);
    else problems.push(item.problem);
  }
  return { leaves, problems };
}

/** scanMessage with a scanner that records what it was given (and finds one finding per leaf). */
async function scanned(message: string | Buffer) {
  const seen: Leaf[] = [];
  const scanLeaf = (leaf: Leaf): Promise<Finding[]> => {
    seen.push(leaf);
    return Promise.resolve([{ symbol: 'SEEN', score: 0, part: leaf.path.join(' > ') }]);
  };
  const result = await scanMessage(Buffer.from(message), { scanLeaf, maxHeaderBytes: LIMIT, reread: () => Promise.resolve(Buffer.from(message)) });
  return { ...result, seen };
}

const doc = buildPlainCfb();

function multipart(parts: string[], boundary = 'b1', head = 'From: a@example.test\r\nMIME-Version: 1.0\r\n'): string {
  return `${head}Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\npreamble\r\n${parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('')}--${boundary}--\r\n`;
}

describe('MIME walk', () => {
  it('gives every leaf decoded, named by file name or part number, with the body flagged as body', async () => {
    const { leaves } = await walk(
      multipart([
        'Content-Type: text/plain; charset=utf-8\r\n\r\nHello',
        'Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>caf=C3=A9</p>',
        `Content-Type: application/msword; name="a.doc"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(doc)}`,
      ]),
    );
    assert.deepEqual(
      leaves.map((l) => [l.path.join(' > '), l.body, l.kind]),
      [
        ['part 1', true, 'other'],
        ['part 2', true, 'other'],
        ['a.doc', false, 'cfb'],
      ],
    );
    assert.equal(leaves[1].bytes.toString(), '<p>café</p>');
    assert.ok(leaves[2].bytes.equals(doc));
    assert.equal(leaves[2].bytes.buffer.byteLength, doc.length, 'on a buffer of its own: a scan worker gets exactly the leaf');
  });

  it('a single-part message is one leaf, its body, decoded as its headers say', async () => {
    const { leaves } = await walk(`Subject: x\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(doc)}`);
    assert.equal(leaves.length, 1);
    assert.deepEqual(leaves[0].path, ['body']);
    assert.ok(leaves[0].bytes.equals(doc));
  });

  it('uuencoded blocks in a text body, and an x-uuencode part, are leaves named after their begin line', async () => {
    for (const cte of ['x-uuencode', 'uuencode', 'x-uue']) {
      const { leaves } = await walk(
        multipart([
          `Content-Type: text/plain\r\n\r\nSee attached.\r\n\r\n${uuencode('invoice.doc', doc)}\r\nBye`,
          `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${uuencode('order.xls', doc)}`,
        ]),
      );
      assert.deepEqual(
        leaves.map((l) => l.path.join(' > ')),
        ['part 1', 'part 1 > invoice.doc', 'part 2 > order.xls'],
      );
      assert.ok(leaves[1].bytes.equals(doc) && leaves[2].bytes.equals(doc), cte);
      assert.equal(leaves[1].filename, 'invoice.doc');
    }
  });

  it('opens forwarded messages: message/rfc822 (7bit and base64) and a leaf whose bytes are a message', async () => {
    const inner = `Received: from x\r\n${'Received: from relay.example by mx.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n'.repeat(160)}MIME-Version: 1.0\r\n${multipart([`Content-Type: application/octet-stream; name="in.doc"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(doc)}`], 'inner', '')}`;
    assert.ok(inner.indexOf('MIME-Version') > 10_000);
    for (const [type, cte, body] of [
      ['message/rfc822', '7bit', inner],
      ['message/rfc822', 'base64', b64(Buffer.from(inner))],
      ['application/octet-stream; name="fwd.eml"', 'base64', b64(Buffer.from(inner))],
      ['text/plain', '8bit', inner],
    ]) {
      const { leaves } = await walk(multipart([`Content-Type: ${type}\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${body}`]));
      const docLeaf = leaves.find((l) => l.kind === 'cfb');
      assert.ok(docLeaf, `${type} ${cte}: the document inside was reached`);
      assert.equal(docLeaf.path.at(-1), 'in.doc');
      assert.equal(docLeaf.body, false, 'a forwarded message is not the body');
      assert.ok(leaves.some((l) => l.message));
    }
  });

  it('reads a header block far past 256 KB when the limit allows, and holds one past the limit', async () => {
    const pad = `X-Pad: ${'a'.repeat(998)}\r\n`.repeat(300);
    const message = `From: a@example.test\r\n${pad}${multipart([`Content-Type: application/msword; name=a.doc\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(doc)}`], 'b1', '')}`;
    const read = await walk(message);
    assert.ok(read.leaves.some((l) => l.kind === 'cfb'));
    assert.deepEqual(read.problems, []);
    const held = await walk(message, 256 * 1024);
    assert.equal(held.problems[0]?.symbol, 'MIME_UNPARSEABLE');
    assert.match(held.problems[0].detail, /header block larger than the limit/);
    assert.ok(!held.leaves.some((l) => l.kind === 'cfb'));
  });

  it('nested parts: a huge header block inside, absurd nesting, too many parts are held', async () => {
    const deep =
      Array.from({ length: 70 }, (_, i) => `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n`).join('') +
      'Content-Type: text/plain\r\n\r\nx\r\n';
    assert.match((await walk(`Subject: deep\r\n${deep}`)).problems[0].detail, /nested deeper than 64/);
    const bigInside = multipart([
      `Content-Type: application/msword; name=a.doc\r\n${`X-Pad: ${'a'.repeat(998)}\r\n`.repeat(300)}Content-Transfer-Encoding: base64\r\n\r\n${b64(doc)}`,
    ]);
    const inside = await walk(bigInside, 256 * 1024);
    assert.equal(inside.problems[0]?.symbol, 'MIME_UNPARSEABLE');
    assert.ok(
      (await walk(bigInside)).leaves.some((l) => l.kind === 'cfb'),
      'read whole within the message size limit',
    );
    const many = multipart(Array.from({ length: 2100 }, () => 'Content-Type: text/plain\r\n\r\nx'));
    assert.equal((await walk(many)).problems[0]?.symbol, 'MIME_UNPARSEABLE');
  });

  it('stops when its signal aborts', async () => {
    const controller = new AbortController();
    const message = multipart(Array.from({ length: 10 }, (_, i) => `Content-Type: application/octet-stream; name=f${i}\r\n\r\n${'x'.repeat(100)}`));
    const walked: string[] = [];
    await assert.rejects(async () => {
      for await (const item of walkMessage(Buffer.from(message), { maxHeaderBytes: LIMIT, signal: controller.signal })) {
        walked.push(item.leaf!.path[0]);
        if (walked.length === 2) controller.abort(new Error('client went away'));
      }
    }, /client went away/);
    assert.deepEqual(walked, ['f0', 'f1']);
  });
});

describe('MIME pass: which leaves the engine sees', () => {
  it('a real text body takes the fast path; a text part holding a document does not, whatever its headers say', async () => {
    const variants = [
      'Content-Type: text/plain; name="invoice.doc"\r\nContent-Transfer-Encoding: base64',
      'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64',
      'Content-Type: text/html\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64',
      'Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64',
    ];
    for (const head of variants) {
      const r = await scanned(multipart(['Content-Type: text/plain\r\n\r\nHello, see below.', `${head}\r\n\r\n${b64(doc)}`]));
      assert.deepEqual(
        r.seen.map((l) => l.kind),
        ['cfb'],
        head,
      );
      assert.equal(r.text, 'Hello, see below.');
    }
  });

  it('text attachments with a name go to the engine (a later check may judge them by name); plain bodies do not', async () => {
    const r = await scanned(
      multipart(['Content-Type: text/plain\r\n\r\nbody', 'Content-Type: text/csv; name="a.csv"\r\nContent-Disposition: attachment\r\n\r\na,b\r\n1,2']),
    );
    assert.deepEqual(
      r.seen.map((l) => l.path.join()),
      ['a.csv'],
    );
  });

  it('decodes body text as mailparser did: ISO-2022-JP, Shift_JIS, format=flowed, quoted-printable', async () => {
    const ja = 'お世話になっております。パスワード：2021';
    const jis = Buffer.from(Encoding.convert(Encoding.stringToCode(ja), { to: 'JIS', from: 'UNICODE' })).toString('latin1');
    const sjis = b64(iconv.encode(ja, 'Shift_JIS'));
    const r = await scanned(
      multipart([
        `Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${jis}`,
        `Content-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: base64\r\n\r\n${sjis}`,
        'Content-Type: text/plain; format=flowed; delsp=yes\r\n\r\nThis is a long li \r\nne, flowed.\r\n',
      ]),
    );
    assert.equal(r.text, `${ja}\n${ja}\nThis is a long line, flowed.`);
    assert.deepEqual(r.seen, []);
  });

  it('two readings: a part with two transfer encodings is scanned decoded each way, and the finding says so', async () => {
    const r = await scanned(
      multipart([`Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(doc)}`]),
    );
    assert.ok(r.seen.some((l) => l.kind === 'cfb' && l.alternate));
    assert.ok(r.findings.some((f) => f.symbol === 'MIME_AMBIGUOUS'));
  });

  it('two readings: a second Content-Type whose boundary the first reading never sees is read the lenient way', async () => {
    const message =
      'From: a@example.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Type: multipart/mixed; boundary="evil"\r\n\r\n' +
      `--evil\r\nContent-Type: application/msword; name="a.doc"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(doc)}\r\n--evil--\r\n`;
    const r = await scanned(message);
    assert.ok(
      r.seen.some((l) => l.kind === 'cfb'),
      'the document only the second Content-Type reveals was scanned',
    );
    const ambiguous = r.findings.find((f) => f.symbol === 'MIME_AMBIGUOUS');
    assert.ok(ambiguous);
    assert.match(ambiguous.part!, /second reading > a\.doc/);
  });

  it('the same bytes reached twice are scanned once', async () => {
    const part = `Content-Type: application/octet-stream; name="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(randomBytes(64))}`;
    const r = await scanned(multipart([part, part]));
    assert.equal(r.seen.length, 1);
  });
});
