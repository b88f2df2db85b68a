// What the two WebAssembly spin loops of Agile/Standard key derivation share (./sha512-spin.ts,
// ./sha1-spin.ts): the few opcodes they use, LEB128 numbers, and the module around one function
// spin(from, to) with one page of memory. Each loop is assembled in code from FIPS 180-4, so the
// repository holds no binary and the project no dependency for it.

/** The WebAssembly opcodes the spin loops use. */
export const O = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32Load: 0x28,
  i64Load: 0x29,
  i32Store: 0x36,
  i64Store: 0x37,
  i32Const: 0x41,
  i64Const: 0x42,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Or: 0x72,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i32Rotl: 0x77,
  i64Add: 0x7c,
  i64And: 0x83,
  i64Or: 0x84,
  i64Xor: 0x85,
  i64Shl: 0x86,
  i64ShrU: 0x88,
  i64Rotr: 0x8a,
  i64ExtendI32U: 0xad,
};

/** WebAssembly value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

export function sleb(v: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(byte & 0x40)) || (v === -1n && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** The byte swap of a 32-bit local onto the stack (i32): the little-endian round counter read as a big-endian word. */
export function bswap32(c: number[], local: number): void {
  const i32 = (v: number) => c.push(O.i32Const, ...sleb(BigInt(v | 0)));
  c.push(O.get, local);
  i32(24);
  c.push(O.i32Shl, O.get, local);
  i32(0xff00);
  c.push(O.i32And);
  i32(8);
  c.push(O.i32Shl, O.i32Or, O.get, local);
  i32(8);
  c.push(O.i32ShrU);
  i32(0xff00);
  c.push(O.i32And, O.i32Or, O.get, local);
  i32(24);
  c.push(O.i32ShrU, O.i32Or);
}

/**
 * A module exporting memory "mem" (one page) and spin(from: i32, to: i32), whose body is `code`
 * (which must end the function) with `locals` extra locals of one type after the two parameters.
 */
export function spinModule(locals: number, type: number, code: number[]): Uint8Array {
  const body = [1, locals, type, ...code];
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 2, I32, I32, 0]), // type: (i32, i32) -> ()
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

export interface SpinLoop {
  spin: (from: number, to: number) => void;
  mem: DataView;
}

/** Compiles `assemble()`'s module on first use (~1 ms) and keeps it for the thread. */
export function lazySpin(assemble: () => Uint8Array): () => SpinLoop {
  let loop: SpinLoop | undefined;
  return () => {
    if (!loop) {
      const { exports } = new wasm.Instance(new wasm.Module(assemble()));
      loop = { spin: exports.spin, mem: new DataView(exports.mem.buffer) };
    }
    return loop;
  };
}

/** Rounds between two looks at the deadline (~20 ms of SHA-512, less of SHA-1). */
const CHUNK = 0x4000;

/** Runs rounds 0..spinCount-1 in chunks; false when `deadline` (Date.now()) passes mid-way. */
export function runSpin(spin: SpinLoop['spin'], spinCount: number, deadline: number): boolean {
  for (let i = 0; i < spinCount; i += CHUNK) {
    if (Date.now() > deadline) return false;
    spin(i, Math.min(spinCount, i + CHUNK));
  }
  return true;
}
