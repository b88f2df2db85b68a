// Mutation fuzzing of the OLE scanner with a fixed seed: byte flips, overwritten header/directory
// fields and truncations of every fixture kind. scanOle must never throw and must return within
// its time budget.
import assert from 'node:assert/strict';
import { scanOle } from '../../../src/inspect/office/ole.js';
import type { BlobScanner } from '../../../src/inspect/office/types.js';
import { XLM, buildAgileEncrypted, buildDoc, buildPpt, buildVbaProjectBin, buildXls, ptg } from '../../fixtures/office/ole-builders.js';
import { oleCtx } from '../../fixtures/office/ole-context.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('scanOle fuzz', function () {
  this.timeout(120_000);
  const code = 'Sub AutoOpen()\n  Shell "calc.exe"\nEnd Sub\n';
  const project = {
    modules: [
      { name: 'Module1', code },
      { name: 'ThisDocument', code: '', document: true },
    ],
  };
  const fixtures: Record<string, Buffer> = {
    doc: buildDoc(project),
    xls: buildXls({
      macroSheet: { name: 'M', hidden: 1, formulas: [Buffer.concat([ptg.str('calc'), ptg.funcVar(XLM.EXEC, 1)]), ptg.funcVar(XLM.HALT, 0)] },
      autoOpen: true,
      vba: project,
    }),
    ppt: buildPpt(buildVbaProjectBin(project)),
    bin: buildVbaProjectBin(project),
    enc: buildAgileEncrypted(Buffer.from('PK\x03\x04 fuzz'), 'VelvetSweatshop', 100),
  };

  it('300 mutated files: no throw, findings are well-formed, within the time budget', async () => {
    const rnd = mulberry32(0x0badc0de);
    const pick = (n: number) => Math.floor(rnd() * n);
    const names = Object.keys(fixtures);
    // The dispatcher stand-in recurses into CFBs like the real one would.
    const scanBlob: BlobScanner = async (b, ctx) => (b.subarray(0, 4).toString('hex') === 'd0cf11e0' ? scanOle(b, ctx, scanBlob) : []);
    const timeoutMs = 3000;
    let corrupt = 0;
    for (let i = 0; i < 300; i++) {
      const src = fixtures[names[i % names.length]];
      const b = Buffer.from(src);
      const kind = pick(4);
      if (kind === 0) {
        for (let k = 1 + pick(20); k > 0; k--) b[pick(b.length)] = pick(256);
      } else if (kind === 1) {
        // header fields: sector shift, FAT/dir/minifat/DIFAT pointers and counts, first DIFAT slots
        const offs = [0x1e, 0x20, 0x2c, 0x30, 0x38, 0x3c, 0x40, 0x44, 0x48, 0x4c, 0x50];
        for (let k = 1 + pick(3); k > 0; k--) b.writeUInt32LE(rnd() < 0.5 ? pick(64) : Math.floor(rnd() * 0xffffffff), offs[pick(offs.length)]);
      } else if (kind === 2) {
        // directory entry fields (the directory is near the start in these small files): left/right/child/start/size
        for (let k = 1 + pick(6); k > 0; k--) {
          const entry = 512 + 128 * pick(Math.max(1, Math.floor((b.length - 512) / 128)));
          const field = [68, 72, 76, 116, 120][pick(5)];
          if (entry + field + 4 <= b.length) b.writeUInt32LE(rnd() < 0.5 ? pick(16) : Math.floor(rnd() * 0xffffffff), entry + field);
        }
      }
      const input = kind === 3 ? b.subarray(0, pick(b.length)) : b;
      const ctx = oleCtx(`fuzz${i}`, { timeoutMs, maxBytes: 32 * 1024 * 1024 });
      const t0 = Date.now();
      const f = await scanOle(input, ctx, scanBlob);
      const ms = Date.now() - t0;
      assert.ok(ms < timeoutMs + 1000, `case ${i} took ${ms} ms`);
      assert.ok(Array.isArray(f));
      for (const x of f) {
        assert.equal(typeof x.symbol, 'string');
        assert.ok(!x.detail || x.detail.length < 300, x.detail);
      }
      if (f.some((x) => x.symbol === 'OFFICE_CORRUPT')) corrupt++;
    }
    assert.ok(corrupt > 0, 'some mutations are reported as corrupt');
  });
});
