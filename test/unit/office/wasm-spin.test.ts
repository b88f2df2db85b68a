// The WebAssembly spins of Office key derivation (SHA-512 for Agile's default, SHA-1 for Standard
// and older Agile) give exactly what node:crypto gives, round for round, and stop at their deadline.
import assert from 'node:assert/strict';
import { hash, randomBytes } from 'node:crypto';
import { sha1Spin } from '../../../src/inspect/office/sha1-spin.js';
import { sha512Spin } from '../../../src/inspect/office/sha512-spin.js';

/** The reference: Hn = H(LE32(n-1) + Hn-1) with node:crypto. */
function reference(alg: string, first: Buffer, spinCount: number): Buffer {
  const round = Buffer.alloc(4 + first.length);
  first.copy(round, 4);
  for (let i = 0; i < spinCount; i++) {
    round.writeUInt32LE(i, 0);
    hash(alg, round, 'buffer').copy(round, 4);
  }
  return round.subarray(4);
}

const spins = [
  { alg: 'sha512', size: 64, spin: sha512Spin },
  { alg: 'sha1', size: 20, spin: sha1Spin },
];

for (const { alg, size, spin } of spins) {
  describe(`${alg.toUpperCase()} spin in WebAssembly`, () => {
    for (const rounds of [0, 1, 2, 3, 255, 256, 16384, 16385, 100_000] /* counters through three bytes */) {
      it(`${rounds} rounds give what node:crypto gives`, () => {
        const first = randomBytes(size);
        assert.deepEqual(spin(first, rounds, Infinity), reference(alg, first, rounds));
      });
    }

    it('gives up (null) once the deadline has passed', () => {
      assert.equal(spin(randomBytes(size), 100_000, Date.now() - 1), null);
    });

    it(`refuses an H0 that is not ${size} bytes`, () => {
      assert.throws(() => spin(randomBytes(size === 64 ? 20 : 64), 10, Infinity), new RegExp(`${size} bytes`));
    });
  });
}
