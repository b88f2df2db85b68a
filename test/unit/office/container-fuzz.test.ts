// Deterministic fuzzing of the container fixtures through the dispatcher: no throw, bounded time.
import assert from 'node:assert/strict';
import { scanBlob } from '../../../src/inspect/office/index.js';
import { DEFAULT_OFFICE_LIMITS, newBudget, type OfficeLimits, type ScanContext } from '../../../src/inspect/office/types.js';
import {
  biff12MacroSheet,
  buildDocx,
  buildFlatOpc,
  buildMht,
  buildOneNote,
  buildRtf,
  buildSylk,
  buildVbaCfb,
  buildWord2003Xml,
  buildXlsx,
  buildZip,
  macroSheetXml,
  ole1Object,
  olePackage,
} from '../../fixtures/office/container-builders.js';

/** mulberry32: small deterministic PRNG */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(src: Buffer, r: () => number): Buffer {
  const b = Buffer.from(src);
  const int = (n: number) => Math.floor(r() * n);
  switch (int(6)) {
    case 0: // flip bytes
      for (let k = 0, n = 1 + int(16); k < n; k++) b[int(b.length)] = int(256);
      return b;
    case 1: // truncate
      return b.subarray(0, int(b.length));
    case 2: {
      // overwrite a 4-byte field with an extreme value
      const at = int(Math.max(1, b.length - 4));
      b.writeUInt32LE([0, 0xffffffff, 0x7fffffff, 0x10000, 1][int(5)], at);
      return b;
    }
    case 3: {
      // duplicate a slice
      const from = int(b.length);
      const len = int(Math.min(4096, b.length - from));
      return Buffer.concat([b.subarray(0, from + len), b.subarray(from, from + len), b.subarray(from + len)]);
    }
    case 4: {
      // delete a slice
      const from = int(b.length);
      return Buffer.concat([b.subarray(0, from), b.subarray(from + int(256))]);
    }
    default: {
      // insert structural characters
      const at = int(b.length);
      const junk = ['{', '}', '\\bin999999 ', '\\objdata ', '<w:binData w:name="x">', 'PK\x03\x04', '--', '\r\n\r\n', 'ActiveMime'][int(9)];
      return Buffer.concat([b.subarray(0, at), Buffer.from(junk, 'latin1'), b.subarray(at)]);
    }
  }
}

describe('office containers: fuzz (deterministic)', function () {
  this.timeout(120_000);

  it('300 mutations of every container fixture: no throw, every scan bounded', async () => {
    const vba = buildVbaCfb();
    const docm = await buildDocx({ vbaProject: vba, macroEnabled: true });
    const seeds: Buffer[] = [
      docm,
      await buildXlsx({ macroEnabled: true, macroSheetXml: macroSheetXml(['=EXEC("calc")']), macroSheetBin: biff12MacroSheet(['x']) }),
      await buildZip([
        { name: 'a.docm', data: docm },
        { name: 'n.zip', data: await buildZip([{ name: 'b.txt', data: 'hi' }]) },
      ]),
      await buildZip([{ name: 'a.docm', data: docm, password: 'pw', zipCrypto: true }]),
      await buildZip([{ name: 'a.docm', data: docm, password: 'pw' }]),
      buildRtf(ole1Object('Word.Document.8', buildVbaCfb({ layout: 'word' })), { obfuscate: true }),
      buildRtf(ole1Object('Package', olePackage('a.docm', docm)), { bin: true }),
      buildWord2003Xml(vba),
      buildFlatOpc(vba, macroSheetXml(['=CALL("a")'])),
      buildMht(vba),
      buildSylk(['=EXEC("calc")', '=HALT()'], { macroSheet: true, autoOpen: true }),
      buildOneNote(docm),
    ];
    const r = rng(0xc0ffee);
    const limits: OfficeLimits = { ...DEFAULT_OFFICE_LIMITS, maxBytes: 32 * 1024 * 1024, timeoutMs: 5_000 };
    let worst = 0;
    for (let i = 0; i < 300; i++) {
      const seed = seeds[i % seeds.length];
      let input = mutate(seed, r);
      if (r() < 0.3) input = mutate(input, r);
      const ctx: ScanContext = { path: [`fuzz${i}`], depth: 0, budget: newBudget(limits), limits, passwords: ['pw'] };
      const t0 = Date.now();
      const fs = await scanBlob(input, ctx);
      const dt = Date.now() - t0;
      worst = Math.max(worst, dt);
      assert.ok(Array.isArray(fs), `case ${i}`);
      for (const f of fs) assert.equal(typeof f.symbol, 'string', `case ${i}`);
      assert.ok(dt < limits.timeoutMs + 2_000, `case ${i} took ${dt} ms`);
    }
    assert.ok(worst < limits.timeoutMs + 2_000);
  });
});
