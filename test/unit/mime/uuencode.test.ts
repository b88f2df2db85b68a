import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeUuBody, findUuBlocks, hasUuBlock } from '../../../src/inspect/mime/uuencode.js';
import { uuencode } from '../../fixtures/mime/uuencode.js';

describe('uuencode decoder', () => {
  it('decodes the textbook line ("Cat" is #0V%T)', () => {
    const [block] = findUuBlocks(Buffer.from('begin 644 cat.txt\n#0V%T\n`\nend\n'));
    assert.equal(block.name, 'cat.txt');
    assert.equal(block.bytes.toString(), 'Cat');
  });

  it('round-trips binary of every length, with CRLF or LF, several blocks in one text', () => {
    for (const n of [0, 1, 2, 3, 44, 45, 46, 1000, 4099]) {
      const data = randomBytes(n);
      const text = `Hello,\r\nsee below.\r\n\r\n${uuencode(`f${n}.bin`, data)}\r\nregards\r\n${uuencode('second.doc', Buffer.from('two'))}`;
      for (const t of [text, text.replace(/\r\n/g, '\n')]) {
        const blocks = findUuBlocks(Buffer.from(t, 'latin1'));
        assert.deepEqual(
          blocks.map((b) => b.name),
          [`f${n}.bin`, 'second.doc'],
        );
        assert.ok(blocks[0].bytes.equals(data), `length ${n}`);
        assert.equal(blocks[1].bytes.toString(), 'two');
      }
    }
  });

  it('is lenient like the clients: blanks stripped by a relay, no end line, names with spaces', () => {
    const data = randomBytes(200);
    // old encoders write zero as a space, and a relay strips the spaces that end a line: missing characters are zeros
    const spaced = uuencode('my invoice.doc', data)
      .split('\r\n')
      .map((line, i) => (i > 0 && line !== 'end' ? line.replace(/`/g, ' ') : line))
      .join('\r\n');
    const stripped = spaced.replace(/ +\r\n/g, '\r\n').replace(/\r\nend\r\n$/, '\r\n');
    const [block] = findUuBlocks(Buffer.from(stripped, 'latin1'));
    assert.equal(block.name, 'my invoice.doc');
    assert.ok(block.bytes.equals(data));
  });

  it('finds no block in prose that merely starts a line with "begin"', () => {
    for (const t of ['begin here and go on', 'beginning 644 x', 'begin 999 x.doc', 'we begin 644 x.doc']) {
      assert.equal(hasUuBlock(Buffer.from(t)), false, t);
      assert.deepEqual(findUuBlocks(Buffer.from(t)), []);
    }
  });

  it('a Content-Transfer-Encoding x-uuencode body without its begin line is decoded whole', () => {
    const data = randomBytes(100);
    const body = uuencode('x', data).split('\r\n').slice(1, -3).join('\r\n');
    const [block] = decodeUuBody(Buffer.from(body, 'latin1'));
    assert.ok(block.bytes.equals(data));
  });
});
