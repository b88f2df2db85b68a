// 7-Zip (24.09) compiled to WebAssembly (npm `7z-wasm`): lists and extracts 7z, RAR 4/5, ISO 9660,
// UDF, CAB, VHD/VHDX, xz, bzip2, LZH ... in pure Node, inside the scan worker, with no 7z binary on
// the machine. Every run gets a fresh instance (instantiated from one compiled module per worker,
// ~20-40 ms): a hostile archive that corrupts 7-Zip's heap, or a C++ exception (this build has no
// exception catching, so 7-Zip's own error paths surface as a JS throw), leaves nothing behind. The
// archive and the extracted files live in the instance's in-memory file system only; nothing touches
// the disk. Bounds, all enforced from the JS side of the sandbox:
// - output bytes: every write() is counted, past the cap the run is stopped (headers may lie);
// - time: the same hook stops the run past the deadline (and the pool terminates a stuck worker);
// - memory: the WebAssembly heap may not grow beyond HEAP_LIMIT (a huge dictionary fails to allocate).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import sevenZipPackage, { type FileSystem, type SevenZipModule } from '7z-wasm';

// the package is CommonJS: its factory is module.exports, and module.exports.default as well
const SevenZip = sevenZipPackage.default;

/** The few WebAssembly JS API calls used here (the project's lib setting has no DOM/WebAssembly types). */
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: object): Promise<WasmInstance>;
}
type WasmModule = object;
type WasmInstance = object;
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The WebAssembly heap of one run may grow to this (dictionaries, buffers); more fails the run. */
export const HEAP_LIMIT = 512 * 1024 * 1024;
const ARCHIVE = '/archive';
const OUT = '/out';

let compiled: Promise<WasmModule> | undefined;

function wasmModule(): Promise<WasmModule> {
  compiled ??= readFile(createRequire(import.meta.url).resolve('7z-wasm/7zz.wasm')).then((b) => wasm.compile(b));
  return compiled;
}

/** Why a run was stopped from the outside. */
export type StopReason = 'output' | 'time' | 'memory';

export class RunStopped extends Error {
  constructor(
    readonly reason: StopReason,
    /** bytes written before the stop */
    readonly written: number,
  ) {
    super(`7-Zip run stopped: ${reason}`);
  }
}

export interface RunLimits {
  /** bytes the run may write in total */
  outputCap: number;
  /** Date.now() past which the run is stopped */
  deadline: number;
}

export interface RunResult {
  /** 7-Zip's exit code: 0 ok, 1 warning, 2 fatal error, 7 command line, 8 memory; 'threw' for an uncaught C++ exception */
  code: number | 'threw';
  stdout: string[];
  stderr: string[];
  /** bytes written */
  written: number;
}

interface EmscriptenImports {
  env: Record<string, unknown>;
}

type Stream = { node?: { contents?: unknown; usedBytes?: unknown }; position?: number; path?: string };

/** One sandboxed 7-Zip, the archive in its file system. */
export class SevenZipRun {
  private stdout: string[] = [];
  private stderr: string[] = [];
  private written = 0;
  private stopped: StopReason | undefined;
  private heapRefused = false;

  private constructor(
    private readonly sz: SevenZipModule,
    private readonly limits: RunLimits,
  ) {}

  static async create(archive: Buffer, limits: RunLimits): Promise<SevenZipRun> {
    const mod = await wasmModule();
    // filled in once the instance exists (the hooks below run only during callMain)
    const self: { run?: SevenZipRun } = {};
    let failed: (e: unknown) => void = () => undefined;
    const instantiation = new Promise<never>((_, reject) => (failed = reject));
    const factory = SevenZip({
      instantiateWasm(imports: EmscriptenImports, ready: (instance: WasmInstance) => void) {
        const env = imports.env;
        const resize = env.emscripten_resize_heap as (size: number) => number;
        env.emscripten_get_heap_max = () => HEAP_LIMIT;
        env.emscripten_resize_heap = (size: number) => {
          if (size > HEAP_LIMIT) {
            if (self.run) self.run.heapRefused = true;
            return 0;
          }
          return resize(size);
        };
        // Emscripten would wait for `ready` forever: a failure ends create() instead
        wasm.instantiate(mod, imports).then(ready, failed);
        return {};
      },
      // never read a password or an answer from the worker's stdin: 7-Zip gets EOF
      stdin: () => null,
      print: (line: string) => self.run?.stdout.push(line),
      printErr: (line: string) => self.run?.stderr.push(line),
    } as never);
    const sz = await Promise.race([factory, instantiation]);
    const run = new SevenZipRun(sz, limits);
    self.run = run;
    sz.FS.writeFile(ARCHIVE, archive);
    sz.FS.mkdir(OUT);
    run.install();
    return run;
  }

  /** Counts and caps every write, stops on the deadline, and grows output files by doubling. */
  private install(): void {
    const fs = this.sz.FS as FileSystem & Record<string, unknown>;
    const write = fs.write.bind(fs);
    const ftruncate = fs.ftruncate.bind(fs);
    const truncate = fs.truncate.bind(fs);
    fs.write = (stream, buffer, offset, length, position, canOwn) => {
      // what 7-Zip extracts; its console output goes through write() too
      if ((stream as unknown as Stream).path?.startsWith(`${OUT}/`)) this.check(length);
      growForWrite(stream as unknown as Stream, length, position);
      return write(stream, buffer, offset, length, position, canOwn);
    };
    // pre-sizing a file to a declared size must not allocate past the cap either
    fs.ftruncate = (fd, len) => {
      if (len > this.limits.outputCap) this.stop('output');
      ftruncate(fd, len);
    };
    fs.truncate = (path, len) => {
      if (len > this.limits.outputCap) this.stop('output');
      truncate(path, len);
    };
  }

  private check(length: number): void {
    this.written += length;
    if (this.written > this.limits.outputCap) this.stop('output');
    if (Date.now() > this.limits.deadline) this.stop('time');
  }

  private stop(reason: StopReason): never {
    this.stopped = reason;
    throw new RunStopped(reason, this.written);
  }

  /** Runs one 7-Zip command line; a stop from a hook is rethrown as RunStopped. */
  call(args: string[]): RunResult {
    this.stdout.length = 0;
    this.stderr.length = 0;
    let code: number | 'threw';
    try {
      code = this.sz.callMain(args) as unknown as number;
    } catch (e) {
      if (this.stopped) throw new RunStopped(this.stopped, this.written);
      if (this.heapRefused) throw new RunStopped('memory', this.written);
      if (e instanceof RunStopped) throw e;
      code = 'threw';
    }
    if (this.stopped) throw new RunStopped(this.stopped, this.written);
    if (this.heapRefused && code !== 0) throw new RunStopped('memory', this.written);
    return { code: code ?? 0, stdout: [...this.stdout], stderr: [...this.stderr], written: this.written };
  }

  /** `7z l -slt`: one record per item. */
  list(password: string, type?: string): { result: RunResult; items: ListedItem[] } {
    const result = this.call(['l', '-slt', '-ba', '-bsp0', `-p${password}`, ...(type ? [`-t${type}`] : []), ARCHIVE]);
    return { result, items: parseSlt(result.stdout) };
  }

  /** `7z x` into the in-memory output directory (cleared first). */
  extract(password: string, type?: string): RunResult {
    this.clear(OUT);
    return this.call(['x', '-y', '-bso0', '-bsp0', '-bse1', `-p${password}`, ...(type ? [`-t${type}`] : []), `-o${OUT}`, ARCHIVE]);
  }

  /** Regular files under the output directory: path relative to it, and the bytes (copied out of the instance). */
  *files(): Generator<{ path: string; data: Buffer }> {
    const fs = this.sz.FS;
    const walk = function* (dir: string): Generator<{ path: string; data: Buffer }> {
      for (const name of fs.readdir(dir)) {
        if (name === '.' || name === '..') continue;
        const full = `${dir}/${name}`;
        const st = fs.lstat(full);
        if (fs.isDir(st.mode)) yield* walk(full);
        else if (fs.isFile(st.mode)) {
          const data = Buffer.from(fs.readFile(full));
          fs.unlink(full); // the copy is ours now: free the instance's
          yield { path: full.slice(OUT.length + 1), data };
        }
      }
    };
    yield* walk(OUT);
  }

  private clear(dir: string): void {
    const fs = this.sz.FS;
    for (const name of fs.readdir(dir)) {
      if (name === '.' || name === '..') continue;
      const full = `${dir}/${name}`;
      if (fs.isDir(fs.lstat(full).mode)) {
        this.clear(full);
        fs.rmdir(full);
      } else fs.unlink(full);
    }
  }
}

/**
 * MEMFS grows a file by 1/8 each time it fills up, which copies a 100 MB output ~40 times; growing by
 * doubling keeps extraction linear. Only an optimisation: when the internals are not what they were,
 * MEMFS grows the file its own way.
 */
function growForWrite(stream: Stream, length: number, position: number | undefined): void {
  const node = stream.node;
  if (!node || !(node.contents instanceof Uint8Array) || typeof node.usedBytes !== 'number') return;
  const need = (position ?? stream.position ?? 0) + length;
  if (need <= node.contents.length) return;
  const grown = new Uint8Array(Math.max(need, node.contents.length * 2));
  grown.set(node.contents.subarray(0, node.usedBytes));
  node.contents = grown;
}

export interface ListedItem {
  path: string;
  size: number | undefined;
  packedSize: number | undefined;
  folder: boolean;
  encrypted: boolean;
  method?: string;
}

/** Records of `7z l -slt -ba`: "Key = Value" lines, a blank line between items. */
export function parseSlt(lines: string[]): ListedItem[] {
  const items: ListedItem[] = [];
  let cur: Record<string, string> = {};
  const flush = (): void => {
    if (cur.Path !== undefined) {
      const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
      items.push({
        path: cur.Path,
        size: num(cur.Size),
        packedSize: num(cur['Packed Size']),
        folder: cur.Folder === '+' || /^D/.test(cur.Attributes ?? ''),
        encrypted: cur.Encrypted === '+',
        method: cur.Method,
      });
    }
    cur = {};
  };
  for (const raw of lines.join('\n').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      flush();
      continue;
    }
    const eq = line.indexOf(' = ');
    if (eq > 0) {
      const key = line.slice(0, eq).trim();
      // a new Path starts a new record even without the blank line
      if (key === 'Path' && cur.Path !== undefined) flush();
      cur[key] = line.slice(eq + 3);
    }
  }
  flush();
  return items;
}
