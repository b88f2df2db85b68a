// Where a leaf's decoded bytes live: an ArrayBuffer of the leaf's own, exactly its length (a scan
// worker gets a copy of it, and of nothing else). Large leaves get memory pages of their own (a
// resizable ArrayBuffer, which V8 maps outside the malloc heap) and are written there as they are
// decoded. Measured with 50 concurrent messages of 25 MB (npm run bench:memory):
//
// - no second copy: the decoder's chunks go straight into the leaf's pages, instead of being held in
//   a list and joined at the end (which doubled every leaf for a moment);
// - memory the garbage collector sees: the leaves used to be SharedArrayBuffers, handed to the worker
//   without a copy, but V8 does not count SharedArrayBuffers as memory to collect for, so dead
//   leaves stayed until a major GC happened to run: a gigabyte of them. An ArrayBuffer counts (in
//   the worker too, for its copy), so it is collected when leaves pile up;
// - memory that goes back: glibc serves allocations of several MB from its heap once it has seen
//   one freed, then cannot give that heap back while anything above it lives (~650 MB stayed
//   resident after the run). Pages of their own are unmapped when the leaf is collected.
//
// Small leaves (most text bodies) stay on the malloc heap, where they are cheaper than a mapping.

/** From this size on a leaf's bytes get pages of their own. */
export const OWN_PAGES_FROM = 256 * 1024;
/** Address space reserved for a growing leaf (only the pages written become memory); it moves once past this. */
const FIRST_RESERVATION = 64 * 1024 * 1024;
/** A growing leaf commits pages in steps of at least this much (each step is a system call). */
const GROW_STEP = 1024 * 1024;

/** A buffer of exactly `length` bytes on an ArrayBuffer of its own: pages of their own when large. */
export function leafBuffer(length: number): Buffer {
  const buffer = length >= OWN_PAGES_FROM ? new ArrayBuffer(length, { maxByteLength: length }) : new ArrayBuffer(length);
  return Buffer.from(buffer);
}

/** The chunks in one leaf buffer. */
export function joinLeaf(chunks: Buffer[], length = chunks.reduce((n, c) => n + c.length, 0)): Buffer {
  const out = leafBuffer(length);
  let at = 0;
  for (const chunk of chunks) {
    chunk.copy(out, at);
    at += chunk.length;
  }
  return out;
}

/** Collects a leaf's bytes of unknown length, chunk by chunk, into a leaf buffer. */
export class LeafBytes {
  private chunks: Buffer[] = [];
  private pages: ArrayBuffer | undefined;
  length = 0;

  append(chunk: Buffer): void {
    if (!chunk.length) return;
    if (!this.pages) {
      this.chunks.push(chunk);
      this.length += chunk.length;
      if (this.length >= OWN_PAGES_FROM) this.moveToPages();
      return;
    }
    this.ensure(this.length + chunk.length);
    new Uint8Array(this.pages).set(chunk, this.length);
    this.length += chunk.length;
  }

  /** The bytes collected, on a buffer of exactly their length. */
  finish(): Buffer {
    if (!this.pages) {
      const out = joinLeaf(this.chunks, this.length);
      this.chunks = [];
      return out;
    }
    const pages = this.pages;
    this.pages = undefined;
    pages.resize(this.length); // the committed steps past the end go back
    return Buffer.from(pages);
  }

  private moveToPages(): void {
    const held = this.chunks;
    this.chunks = [];
    this.pages = new ArrayBuffer(0, { maxByteLength: Math.max(FIRST_RESERVATION, this.length * 4) });
    this.ensure(this.length);
    const view = new Uint8Array(this.pages);
    let at = 0;
    for (const chunk of held) {
      view.set(chunk, at);
      at += chunk.length;
    }
  }

  /** Room for `needed` bytes: commits more pages, or moves to a larger reservation (rare: a leaf past 64 MB). */
  private ensure(needed: number): void {
    const pages = this.pages!;
    if (needed <= pages.byteLength) return;
    const size = Math.max(needed, Math.min(pages.byteLength * 2, pages.byteLength + 16 * GROW_STEP), pages.byteLength + GROW_STEP);
    if (size <= pages.maxByteLength) {
      pages.resize(size);
      return;
    }
    const larger = new ArrayBuffer(size, { maxByteLength: Math.max(size, pages.maxByteLength * 4) });
    new Uint8Array(larger).set(new Uint8Array(pages, 0, this.length));
    this.pages = larger;
  }
}
