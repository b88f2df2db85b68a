// Message ids: ULIDs (time-sortable, path-safe, unguessable: 80 random bits). The random bits come
// from a pooled crypto buffer: ulid's default draws crypto randomness once per character.
import { randomBytes } from 'node:crypto';
import { ulid } from 'ulid';

let pool = randomBytes(0);
let offset = 0;

function pooledRandom(): number {
  if (offset + 4 > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  const value = pool.readUInt32BE(offset) / 0x1_0000_0000;
  offset += 4;
  return value;
}

export function messageId(): string {
  return ulid(undefined, pooledRandom);
}
