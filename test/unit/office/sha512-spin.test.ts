// The WebAssembly SHA-512 spin of Agile key derivation gives exactly what node:crypto gives, round
// for round, and stops at its deadline.
import assert from 'node:assert/strict';
import { hash, randomBytes } from 'node:crypto';
import { sha512Spin } from '../../../src/inspect/office/sha512-spin.js';

/** The reference: Hn = SHA-512(LE32(n-1) + Hn-1) with node:crypto. */
function reference(first: Buffer, spinCount: number): Buffer {
  const round = Buffer.alloc(68);
  first.copy(round, 4);
  for (let i = 0; i < spinCount; i++) {
    round.writeUInt32LE(i, 0);
    hash('sha512', round, 'buffer').copy(round, 4);
  }
  return round.subarray(4);
}

describe('SHA-512 spin in WebAssembly', () => {
  for (const rounds of [0, 1, 2, 3, 255, 256, 16384, 16385, 100_000]) {
    it(`${rounds} rounds give what node:crypto gives`, () => {
      const first = randomBytes(64);
      assert.deepEqual(sha512Spin(first, rounds, Infinity), reference(first, rounds));
    });
  }

  it('gives up (null) once the deadline has passed', () => {
    assert.equal(sha512Spin(randomBytes(64), 100_000, Date.now() - 1), null);
  });

  it('refuses an H0 that is not 64 bytes', () => {
    assert.throws(() => sha512Spin(randomBytes(20), 10, Infinity), /64 bytes/);
  });
});
