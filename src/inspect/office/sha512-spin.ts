// The SHA-512 spin of [MS-OFFCRYPTO] 2.3.4.11 (Agile encryption's key derivation: Hn = SHA-512(LE32(n-1)
// + Hn-1), 100,000 rounds by default) as one WebAssembly loop. Every round hashes 4 + 64 bytes, one
// compression block whose padding never changes; node:crypto's one-shot hash() pays a call into
// C++, an allocation and a copy per round, more than the compression itself. Here the whole loop
// runs inside one call, the block built from the previous hash in registers. The module is
// assembled below from FIPS 180-4 (no binary in the repository, no dependency);
// test/unit/office/sha512-spin.test.ts checks it against node:crypto.

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

// WebAssembly opcodes used
const O = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32Const: 0x41,
  i64Const: 0x42,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Or: 0x72,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i64Load: 0x29,
  i64Store: 0x37,
  i64Add: 0x7c,
  i64And: 0x83,
  i64Or: 0x84,
  i64Xor: 0x85,
  i64Shl: 0x86,
  i64ShrU: 0x88,
  i64Rotr: 0x8a,
  i64ExtendI32U: 0xad,
};

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function sleb(v: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(byte & 0x40)) || (v === -1n && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
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
    // bswap32(i) << 32 | H0 >> 32
    get(I);
    i32(24);
    c.push(O.i32Shl);
    get(I);
    i32(0xff00);
    c.push(O.i32And);
    i32(8);
    c.push(O.i32Shl, O.i32Or);
    get(I);
    i32(8);
    c.push(O.i32ShrU);
    i32(0xff00);
    c.push(O.i32And, O.i32Or);
    get(I);
    i32(24);
    c.push(O.i32ShrU, O.i32Or, O.i64ExtendI32U);
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

  const body = [1, 10, 0x7e, ...c]; // one group of locals: 10 x i64
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 0]), // type: (i32, i32) -> ()
    ...section(3, [1, 0]), // function 0 of type 0
    ...section(5, [1, 0, 1]), // memory: 1 page
    ...section(7, [2, ...name('spin'), 0, 0, ...name('mem'), 2, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** The few WebAssembly JS API calls used here (the project's lib setting has no WebAssembly types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { spin: (from: number, to: number) => void; mem: { buffer: ArrayBuffer } } };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let instance: { spin: (from: number, to: number) => void; mem: DataView } | undefined;

/** Assembled and compiled once per thread, on the first derivation (~1 ms). */
function module() {
  if (!instance) {
    const { exports } = new wasm.Instance(new wasm.Module(assemble()));
    instance = { spin: exports.spin, mem: new DataView(exports.mem.buffer) };
  }
  return instance;
}

/** Rounds between two looks at the deadline (~20 ms). */
const CHUNK = 0x4000;

/** Hn for n = spinCount, from H0 (64 bytes). Null when `deadline` (Date.now()) passes mid-way. */
export function sha512Spin(first: Buffer, spinCount: number, deadline: number): Buffer | null {
  if (first.length !== 64) throw new RangeError('sha512Spin: H0 must be 64 bytes');
  const { spin, mem } = module();
  for (let k = 0; k < 8; k++) mem.setBigUint64(H_AT + 8 * k, first.readBigUInt64BE(8 * k), true);
  for (let i = 0; i < spinCount; i += CHUNK) {
    if (Date.now() > deadline) return null;
    spin(i, Math.min(spinCount, i + CHUNK));
  }
  const out = Buffer.alloc(64);
  for (let k = 0; k < 8; k++) out.writeBigUInt64BE(mem.getBigUint64(H_AT + 8 * k, true), 8 * k);
  return out;
}
