// The SHA-1 spin of [MS-OFFCRYPTO] 2.3.4.7 and 2.3.4.11 (Hn = SHA-1(LE32(n-1) + Hn-1)): Standard
// encryption's 50,000 rounds, and Agile's 100,000 where the document names SHA-1 (as older
// producers and oletools' samples do), as one WebAssembly loop. Every round hashes 4 + 20 bytes,
// one compression block whose padding never changes; node:crypto's hash() pays a call, an
// allocation and a copy per round, several times the compression itself. The module is assembled
// below from FIPS 180-4 section 6.1 (./wasm-spin.ts); test/unit/office/sha1-spin.test.ts checks it
// against node:crypto.
import { bswap32, I32, lazySpin, O, runSpin, sleb, spinModule, uleb } from './wasm-spin.js';

/** H0..H4 of FIPS 180-4 5.3.1. */
const IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
/** K of FIPS 180-4 4.2.1: the square roots of 2, 3, 5 and 10 times 2^30, whole. */
const K = [2, 3, 5, 10].map((n) => Math.floor(Math.sqrt(n) * 2 ** 30));

/** Memory: H (5 words) at 0, W (80 words) at 32. */
const H_AT = 0;
const W_AT = 32;

/** The module: memory "mem", and spin(from, to) running rounds from..to-1 over H in memory. */
function assemble(): Uint8Array {
  const c: number[] = [];
  // params: 0 = i, 1 = to; i32 locals 2..6 the working variables, 7 = T
  const I = 0;
  const TO = 1;
  const T = 7;
  const get = (l: number) => c.push(O.get, l);
  const i32 = (v: number) => c.push(O.i32Const, ...sleb(BigInt(v | 0)));
  const load = (at: number) => {
    i32(0);
    c.push(O.i32Load, 2, ...uleb(at));
  };
  const store = (at: number, value: () => void) => {
    i32(0);
    value();
    c.push(O.i32Store, 2, ...uleb(at));
  };
  const rotl = (value: () => void, n: number) => {
    value();
    i32(n);
    c.push(O.i32Rotl);
  };
  const w = (t: number) => W_AT + 4 * t;
  const h = (k: number) => H_AT + 4 * k;

  c.push(O.block, 0x40, O.loop, 0x40);
  get(I);
  get(TO);
  c.push(O.i32GeU, O.brIf, 1);
  // the block: LE32(i) | H | 0x80 | zeros | 192 (bits), as big-endian words
  store(w(0), () => bswap32(c, I));
  for (let k = 0; k < 5; k++) store(w(k + 1), () => load(h(k)));
  store(w(6), () => i32(0x80000000));
  for (let k = 7; k < 15; k++) store(w(k), () => i32(0));
  store(w(15), () => i32(192));
  // the message schedule: W[t] = ROTL1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16])
  for (let t = 16; t < 80; t++) {
    store(w(t), () =>
      rotl(() => {
        load(w(t - 3));
        load(w(t - 8));
        c.push(O.i32Xor);
        load(w(t - 14));
        c.push(O.i32Xor);
        load(w(t - 16));
        c.push(O.i32Xor);
      }, 1),
    );
  }
  // the rounds, the working variables renamed rather than moved: v[0] is a ... v[4] is e
  let v = [2, 3, 4, 5, 6];
  v.forEach((local, k) => {
    i32(IV[k]);
    c.push(O.set, local);
  });
  for (let t = 0; t < 80; t++) {
    const [a, b, cc, d, e] = v;
    // T = ROTL5(a) + f(b, c, d) + e + K + W[t]
    rotl(() => get(a), 5);
    if (t < 20) {
      // Ch = d ^ (b & (c ^ d))
      get(d);
      get(b);
      get(cc);
      get(d);
      c.push(O.i32Xor, O.i32And, O.i32Xor);
    } else if (t >= 40 && t < 60) {
      // Maj = (b & c) | (d & (b | c))
      get(b);
      get(cc);
      c.push(O.i32And);
      get(d);
      get(b);
      get(cc);
      c.push(O.i32Or, O.i32And, O.i32Or);
    } else {
      // Parity = b ^ c ^ d
      get(b);
      get(cc);
      c.push(O.i32Xor);
      get(d);
      c.push(O.i32Xor);
    }
    c.push(O.i32Add);
    get(e);
    c.push(O.i32Add);
    i32(K[Math.floor(t / 20)]);
    c.push(O.i32Add);
    load(w(t));
    c.push(O.i32Add, O.set, T);
    // c' = ROTL30(b) (into b's local), a' = T (into e's local)
    rotl(() => get(b), 30);
    c.push(O.set, b);
    get(T);
    c.push(O.set, e);
    v = [e, a, b, cc, d];
  }
  for (let k = 0; k < 5; k++) {
    store(h(k), () => {
      i32(IV[k]);
      get(v[k]);
      c.push(O.i32Add);
    });
  }
  get(I);
  i32(1);
  c.push(O.i32Add, O.set, I, O.br, 0, O.end, O.end, O.end);
  return spinModule(6, I32, c); // locals 2..7: 6 x i32
}

const module = lazySpin(assemble);

/** Hn for n = spinCount, from H0 (20 bytes). Null when `deadline` (Date.now()) passes mid-way. */
export function sha1Spin(first: Buffer, spinCount: number, deadline: number): Buffer | null {
  if (first.length !== 20) throw new RangeError('sha1Spin: H0 must be 20 bytes');
  const { spin, mem } = module();
  for (let k = 0; k < 5; k++) mem.setUint32(H_AT + 4 * k, first.readUInt32BE(4 * k), true);
  if (!runSpin(spin, spinCount, deadline)) return null;
  const out = Buffer.alloc(20);
  for (let k = 0; k < 5; k++) out.writeUInt32BE(mem.getUint32(H_AT + 4 * k, true), 4 * k);
  return out;
}
