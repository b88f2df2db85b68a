// The SHA-512 spin of [MS-OFFCRYPTO] 2.3.4.11 (Agile encryption's key derivation: Hn = SHA-512(LE32(n-1)
// + Hn-1), 100,000 rounds by default) as one WebAssembly loop. Every round hashes 4 + 64 bytes, one
// compression block whose padding never changes; node:crypto's one-shot hash() pays a call into
// C++, an allocation and a copy per round, more than the compression itself. Here the whole loop
// runs inside one call, the block built from the previous hash in registers. The module is
// assembled below from FIPS 180-4 (./wasm-spin.ts: no binary in the repository, no dependency);
// test/unit/office/sha512-spin.test.ts checks it against node:crypto.

import { bswap32, I64, lazySpin, O, runSpin, sleb, spinModule, uleb } from './wasm-spin.js';

/** H0..H7 and K0..K79 of FIPS 180-4: the first 64 bits of the fractional parts of the square roots of the first 8 primes, and of the cube roots of the first 80. */
function constants(): { IV: bigint[]; K: bigint[] } {
  const primes: bigint[] = [];
  for (let n = 2n; primes.length < 80; n++) if (primes.every((p) => n % p !== 0n)) primes.push(n);
  const root = (x: bigint, k: bigint): bigint => {
    let r = 1n << ((BigInt(x.toString(2).length) + k - 1n) / k); // above the root: Newton's method descends
    for (;;) {
      const next = ((k - 1n) * r + x / r ** (k - 1n)) / k;
      if (next >= r) return r;
      r = next;
    }
  };
  const mask = (1n << 64n) - 1n;
  return { IV: primes.slice(0, 8).map((p) => root(p << 128n, 2n) & mask), K: primes.map((p) => root(p << 192n, 3n) & mask) };
}

/** Memory: H (8 words) at 0, W (80 words) at 64. */
const H_AT = 0;
const W_AT = 64;

/** The module: memory "mem", and spin(from, to) running rounds from..to-1 over H in memory. */
function assemble(): Uint8Array {
  const { IV, K } = constants();
  const c: number[] = [];
  // params: 0 = i, 1 = to; i64 locals 2..9 the working variables, 10 = T1, 11 = T2
  const I = 0;
  const TO = 1;
  const T1 = 10;
  const T2 = 11;
  const get = (l: number) => c.push(O.get, l);
  const i64 = (v: bigint) => c.push(O.i64Const, ...sleb(BigInt.asIntN(64, v)));
  const i32 = (v: number) => c.push(O.i32Const, ...sleb(BigInt(v | 0)));
  const load = (at: number) => {
    i32(0);
    c.push(O.i64Load, 3, ...uleb(at));
  };
  const store = (at: number, value: () => void) => {
    i32(0);
    value();
    c.push(O.i64Store, 3, ...uleb(at));
  };
  const rotr = (value: () => void, n: number) => {
    value();
    i64(BigInt(n));
    c.push(O.i64Rotr);
  };
  const xor3 = (a: () => void, b: () => void, d: () => void) => {
    a();
    b();
    c.push(O.i64Xor);
    d();
    c.push(O.i64Xor);
  };
  const w = (t: number) => W_AT + 8 * t;
  const h = (k: number) => H_AT + 8 * k;

  c.push(O.block, 0x40, O.loop, 0x40);
  get(I);
  get(TO);
  c.push(O.i32GeU, O.brIf, 1);
  // the block: LE32(i) | H | 0x80 | zeros | 544 (bits), as big-endian words
  store(w(0), () => {
    bswap32(c, I); // the round counter, little-endian in the block
    c.push(O.i64ExtendI32U);
    i64(32n);
    c.push(O.i64Shl);
    load(h(0));
    i64(32n);
    c.push(O.i64ShrU, O.i64Or);
  });
  for (let k = 1; k < 8; k++) {
    store(w(k), () => {
      load(h(k - 1));
      i64(32n);
      c.push(O.i64Shl);
      load(h(k));
      i64(32n);
      c.push(O.i64ShrU, O.i64Or);
    });
  }
  store(w(8), () => {
    load(h(7));
    i64(32n);
    c.push(O.i64Shl);
    i64(0x80000000n);
    c.push(O.i64Or);
  });
  for (let k = 9; k < 15; k++) store(w(k), () => i64(0n));
  store(w(15), () => i64(544n));
  // the message schedule
  for (let t = 16; t < 80; t++) {
    store(w(t), () => {
      const x = () => load(w(t - 2));
      xor3(
        () => rotr(x, 19),
        () => rotr(x, 61),
        () => {
          x();
          i64(6n);
          c.push(O.i64ShrU);
        },
      );
      load(w(t - 7));
      c.push(O.i64Add);
      const y = () => load(w(t - 15));
      xor3(
        () => rotr(y, 1),
        () => rotr(y, 8),
        () => {
          y();
          i64(7n);
          c.push(O.i64ShrU);
        },
      );
      c.push(O.i64Add);
      load(w(t - 16));
      c.push(O.i64Add);
    });
  }
  // the rounds, the working variables renamed rather than moved: v[0] is a ... v[7] is h
  let v = [2, 3, 4, 5, 6, 7, 8, 9];
  v.forEach((local, k) => {
    i64(IV[k]);
    c.push(O.set, local);
  });
  for (let t = 0; t < 80; t++) {
    const [a, b, cc, d, e, f, g, hh] = v;
    // T1 = h + Σ1(e) + Ch(e, f, g) + K[t] + W[t]; Ch = g ^ (e & (f ^ g))
    get(hh);
    xor3(
      () => rotr(() => get(e), 14),
      () => rotr(() => get(e), 18),
      () => rotr(() => get(e), 41),
    );
    c.push(O.i64Add);
    get(g);
    get(e);
    get(f);
    get(g);
    c.push(O.i64Xor, O.i64And, O.i64Xor, O.i64Add);
    i64(K[t]);
    c.push(O.i64Add);
    load(w(t));
    c.push(O.i64Add, O.set, T1);
    // T2 = Σ0(a) + Maj(a, b, c); Maj = (a & b) | (c & (a | b))
    xor3(
      () => rotr(() => get(a), 28),
      () => rotr(() => get(a), 34),
      () => rotr(() => get(a), 39),
    );
    get(a);
    get(b);
    c.push(O.i64And);
    get(cc);
    get(a);
    get(b);
    c.push(O.i64Or, O.i64And, O.i64Or, O.i64Add, O.set, T2);
    // e' = d + T1 (into d's local), a' = T1 + T2 (into h's local)
    get(d);
    get(T1);
    c.push(O.i64Add, O.set, d);
    get(T1);
    get(T2);
    c.push(O.i64Add, O.set, hh);
    v = [hh, a, b, cc, d, e, f, g];
  }
  for (let k = 0; k < 8; k++) {
    store(h(k), () => {
      i64(IV[k]);
      get(v[k]);
      c.push(O.i64Add);
    });
  }
  get(I);
  i32(1);
  c.push(O.i32Add, O.set, I, O.br, 0, O.end, O.end, O.end);

  return spinModule(10, I64, c); // locals 2..11: 10 x i64
}

const module = lazySpin(assemble);

/** Hn for n = spinCount, from H0 (64 bytes). Null when `deadline` (Date.now()) passes mid-way. */
export function sha512Spin(first: Buffer, spinCount: number, deadline: number): Buffer | null {
  if (first.length !== 64) throw new RangeError('sha512Spin: H0 must be 64 bytes');
  const { spin, mem } = module();
  for (let k = 0; k < 8; k++) mem.setBigUint64(H_AT + 8 * k, first.readBigUInt64BE(8 * k), true);
  if (!runSpin(spin, spinCount, deadline)) return null;
  const out = Buffer.alloc(64);
  for (let k = 0; k < 8; k++) out.writeBigUInt64BE(mem.getBigUint64(H_AT + 8 * k, true), 8 * k);
  return out;
}
