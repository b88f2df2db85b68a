// Dot-stuffing of the relayed message: the in-memory path (one corked write) and the stream path
// (a spooled file) must send the same bytes, wherever the chunk boundaries fall.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { DotStuffer, DotStuffing } from '../../src/relay/smtp-client.js';

function viaChunks(chunks: Buffer[]): Buffer {
  const stuffing = new DotStuffing();
  return Buffer.concat([...chunks.map((c) => stuffing.stuff(c)), ...stuffing.end()]);
}

async function viaStream(chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(chunks, { objectMode: false }).pipe(new DotStuffer())) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

/** Every split of the text into three chunks. */
function splits(text: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i <= text.length; i++) for (let j = i; j <= text.length; j++) out.push([text.subarray(0, i), text.subarray(i, j), text.subarray(j)]);
  return out;
}

describe('relay: dot-stuffing', function () {
  const cases: [string, string][] = [
    ['.starts with a dot\r\nx\r\n', '..starts with a dot\r\nx\r\n.\r\n'],
    ['a\r\n.\r\n..two\r\n', 'a\r\n..\r\n...two\r\n.\r\n'],
    ['bare\n.lf\n', 'bare\n..lf\n\r\n.\r\n'],
    ['no final line break', 'no final line break\r\n.\r\n'],
    ['ends with CR\r', 'ends with CR\r\r\n.\r\n'],
    ['', '.\r\n'],
  ];

  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)}: the same bytes on both paths for every chunk split`, async () => {
      for (const chunks of splits(Buffer.from(input))) {
        assert.equal(viaChunks(chunks).toString('latin1'), expected, JSON.stringify(chunks.map(String)));
        assert.equal((await viaStream(chunks)).toString('latin1'), expected, JSON.stringify(chunks.map(String)));
      }
    });
  }
});
