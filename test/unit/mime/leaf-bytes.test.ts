// A leaf's decoded bytes collected chunk by chunk (leaf-bytes.ts): whatever the size and however it
// arrives, the leaf is exactly the bytes that went in, on a buffer of its own.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LeafBytes, OWN_PAGES_FROM } from '../../../src/inspect/mime/leaf-bytes.js';
import { walkMessage, type Leaf } from '../../../src/inspect/mime/walk.js';

function collect(chunks: Buffer[]): Buffer {
  const leaf = new LeafBytes();
  for (const chunk of chunks) leaf.append(chunk);
  return leaf.finish();
}

/** `total` random bytes in chunks of varying sizes (as a decoder emits them). */
function chunked(total: number, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < total; i++) {
    const size = Math.min(sizes[i % sizes.length], total - at);
    chunks.push(randomBytes(size));
    at += size;
  }
  return chunks;
}

describe('leaf bytes', () => {
  for (const [name, total, sizes] of [
    ['empty', 0, [1]],
    ['small, on the heap', 1000, [7, 300]],
    ['just under its own pages', OWN_PAGES_FROM - 1, [65_536]],
    ['exactly where its own pages start', OWN_PAGES_FROM, [OWN_PAGES_FROM]],
    ['several MB in decoder-sized chunks', 5 * 1024 * 1024 + 3, [57, 49_152, 1]],
    ['one chunk larger than a growth step', 3 * 1024 * 1024, [3 * 1024 * 1024]],
  ] as const) {
    it(`${name}: exactly the bytes appended, on a buffer of exactly their length`, () => {
      const chunks = chunked(total, [...sizes]);
      const leaf = collect(chunks);
      assert.equal(leaf.length, total);
      assert.ok(leaf.equals(Buffer.concat(chunks)));
      assert.equal(leaf.byteOffset, 0);
      assert.equal(leaf.buffer.byteLength, total, 'a scan worker gets a copy of the leaf and nothing else');
    });
  }

  it('a leaf past its first reservation (64 MB) moves and keeps every byte', () => {
    const chunks = chunked(70 * 1024 * 1024, [4 * 1024 * 1024 + 1]);
    const leaf = collect(chunks);
    assert.ok(leaf.equals(Buffer.concat(chunks)));
  });

  it('a large base64 attachment comes out of the walk decoded byte for byte', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 5);
    const message = Buffer.from(
      'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n' +
        `--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n${content.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b--\r\n`,
    );
    const leaves: Leaf[] = [];
    // the message in 64 KB pieces, as the spool file streams it
    const pieces = Array.from({ length: Math.ceil(message.length / 65_536) }, (_, i) => message.subarray(i * 65_536, (i + 1) * 65_536));
    for await (const item of walkMessage(pieces, { maxHeaderBytes: 1024 * 1024 })) if (item.leaf) leaves.push(item.leaf);
    assert.deepEqual(
      leaves.map((l) => l.path.join(' > ')),
      ['part 1', 'x.bin'],
    );
    assert.ok(leaves[1].bytes.equals(content));
  });
});
