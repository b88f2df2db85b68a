import assert from 'node:assert/strict';
import { scanAttachment, scanBlob } from '../../../src/inspect/office/index.js';
import { DEFAULT_OFFICE_LIMITS, newBudget, OFFICE_SYMBOLS as S, type OfficeLimits, type ScanContext } from '../../../src/inspect/office/types.js';
import type { Finding } from '../../../src/inspect/finding.js';
import { buildBombZip, buildDocx, buildNestedZip, buildVbaCfb, buildZip, lieAboutSizes, patchMember } from '../../fixtures/office/container-builders.js';

const has = (fs: Finding[], sym: string) => fs.some((f) => f.symbol === sym);
const limits = (o: Partial<OfficeLimits>): OfficeLimits => ({ ...DEFAULT_OFFICE_LIMITS, ...o });

describe('office zip: recursion, budgets, encryption', function () {
  this.timeout(30_000);
  let docm: Buffer;
  before(async () => {
    docm = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
  });

  it('scans every entry of a zip and names the path', async () => {
    const z = await buildZip([
      { name: 'readme.txt', data: 'hello' },
      { name: 'invoice.docm', data: docm },
    ]);
    const fs = await scanAttachment(z, 'invoice.zip', 'application/zip', []);
    const macro = fs.find((f) => f.symbol === S.OFFICE_MACRO);
    assert.ok(macro, JSON.stringify(fs));
    assert.match(macro.part!, /^invoice\.zip > invoice\.docm > word\/vbaProject\.bin/);
  });

  it('finds a macro document in nested zips within the depth limit, and stops beyond it', async () => {
    const nested = await buildNestedZip('invoice.docm', docm, 4);
    assert.ok(has(await scanAttachment(nested, 'a.zip', undefined, []), S.OFFICE_MACRO));
    const deep = await buildNestedZip('invoice.docm', docm, 12);
    const fs = await scanAttachment(deep, 'a.zip', undefined, []);
    assert.ok(has(fs, S.ARCHIVE_LIMIT), JSON.stringify(fs));
    assert.ok(!has(fs, S.OFFICE_MACRO));
    assert.match(fs.find((f) => f.symbol === S.ARCHIVE_LIMIT)!.detail!, /nesting deeper/);
  });

  it('a highly compressible entry is ARCHIVE_LIMIT by ratio, without inflating it', async () => {
    const bomb = await buildBombZip(64 * 1024 * 1024);
    const t0 = Date.now();
    const ctx: ScanContext = { path: ['bomb.zip'], depth: 0, budget: newBudget(DEFAULT_OFFICE_LIMITS), limits: DEFAULT_OFFICE_LIMITS, passwords: [] };
    const fs = await scanBlob(bomb, ctx);
    assert.ok(has(fs, S.ARCHIVE_LIMIT), JSON.stringify(fs));
    assert.match(fs[0].detail!, /ratio/);
    assert.equal(ctx.budget.bytesLeft, DEFAULT_OFFICE_LIMITS.maxBytes, 'nothing inflated');
    assert.ok(Date.now() - t0 < 5000);
  });

  it('a bomb whose headers lie is cut off by the streaming cap', async () => {
    const bomb = lieAboutSizes(await buildBombZip(64 * 1024 * 1024));
    const ctx: ScanContext = { path: ['bomb.zip'], depth: 0, budget: newBudget(DEFAULT_OFFICE_LIMITS), limits: DEFAULT_OFFICE_LIMITS, passwords: [] };
    const t0 = Date.now();
    const fs = await scanBlob(bomb, ctx);
    assert.ok(has(fs, S.ARCHIVE_LIMIT) || has(fs, S.OFFICE_CORRUPT), JSON.stringify(fs));
    assert.ok(DEFAULT_OFFICE_LIMITS.maxBytes - ctx.budget.bytesLeft < 64 * 1024 * 1024, 'stopped before inflating the whole entry');
    assert.ok(Date.now() - t0 < 5000);
  });

  it('the decompressed-bytes budget is shared across entries and stops the scan', async () => {
    const entries = Array.from({ length: 10 }, (_, i) => ({ name: `f${i}.bin`, data: Buffer.alloc(300 * 1024, i), level: 0 }));
    const z = await buildZip(entries);
    const fs = await scanAttachment(z, 'a.zip', undefined, [], limits({ maxBytes: 1024 * 1024 }));
    assert.ok(has(fs, S.ARCHIVE_LIMIT), JSON.stringify(fs));
    assert.match(fs.find((f) => f.symbol === S.ARCHIVE_LIMIT)!.detail!, /bytes/);
  });

  it('the entry-count budget stops archives with many entries', async () => {
    const z = await buildZip(Array.from({ length: 120 }, (_, i) => ({ name: `e${i}.txt`, data: `x${i}` })));
    const fs = await scanAttachment(z, 'a.zip', undefined, [], limits({ maxEntries: 50 }));
    const lim = fs.filter((f) => f.symbol === S.ARCHIVE_LIMIT);
    assert.equal(lim.length, 1, JSON.stringify(fs));
    assert.match(lim[0].detail!, /entry budget/);
  });

  it('an exhausted time budget is ARCHIVE_LIMIT, not a hang', async () => {
    const z = await buildZip([{ name: 'invoice.docm', data: docm }]);
    const ctx: ScanContext = {
      path: ['a.zip'],
      depth: 0,
      budget: { ...newBudget(DEFAULT_OFFICE_LIMITS), deadline: Date.now() - 1 },
      limits: DEFAULT_OFFICE_LIMITS,
      passwords: [],
    };
    const fs = await scanBlob(z, ctx);
    assert.deepEqual(
      fs.map((f) => f.symbol),
      [S.ARCHIVE_LIMIT],
    );
  });

  for (const zipCrypto of [true, false]) {
    const label = zipCrypto ? 'ZipCrypto' : 'AES-256';
    it(`${label}: opens with a candidate password and finds the macro`, async () => {
      const z = await buildZip([{ name: 'invoice.docm', data: docm, password: '2021', zipCrypto }]);
      const fs = await scanAttachment(z, 'invoice.zip', undefined, ['wrong', '2021']);
      assert.ok(has(fs, S.OFFICE_MACRO), JSON.stringify(fs));
      assert.ok(!has(fs, S.ARCHIVE_ENCRYPTED_UNSCANNABLE));
    });

    it(`${label}: without the password the verdict is unscannable, not clean`, async () => {
      const z = await buildZip([
        { name: 'invoice.docm', data: docm, password: '2021', zipCrypto },
        { name: 'b.docm', data: docm, password: '2021', zipCrypto },
      ]);
      const none = await scanAttachment(z, 'invoice.zip', undefined, []);
      assert.deepEqual(
        none.map((f) => f.symbol),
        [S.ARCHIVE_ENCRYPTED_UNSCANNABLE],
      );
      assert.match(none[0].detail!, /2 encrypted entries/);
      const wrong = await scanAttachment(z, 'invoice.zip', undefined, ['nope', 'also-wrong']);
      assert.deepEqual(
        wrong.map((f) => f.symbol),
        [S.ARCHIVE_ENCRYPTED_UNSCANNABLE],
      );
    });
  }

  it('password attempts are bounded by the budget', async () => {
    const z = await buildZip([{ name: 'invoice.docm', data: docm, password: 'right', zipCrypto: true }]);
    const candidates = [...Array.from({ length: 30 }, (_, i) => `w${i}`), 'right'];
    const fs = await scanAttachment(z, 'a.zip', undefined, candidates, limits({ maxPasswordAttempts: 5 }));
    assert.deepEqual(
      fs.map((f) => f.symbol),
      [S.ARCHIVE_ENCRYPTED_UNSCANNABLE],
    );
    assert.match(fs[0].detail!, /exhausted/);
  });

  it('corrupt and truncated zips are OFFICE_CORRUPT, never a throw', async () => {
    const z = await buildZip([{ name: 'invoice.docm', data: docm }]);
    for (const bad of [z.subarray(0, z.length - 30), z.subarray(0, 40), Buffer.from('PK\x03\x04garbage', 'latin1')]) {
      const fs = await scanAttachment(bad, 'a.zip', undefined, []);
      assert.ok(fs.length > 0 && fs.every((f) => f.symbol === S.OFFICE_CORRUPT || f.symbol === S.OFFICE_MACRO), JSON.stringify(fs));
    }
    const flipped = Buffer.from(z);
    for (let i = 60; i < 200; i++) flipped[i] ^= 0x5a;
    const fs = await scanAttachment(flipped, 'a.zip', undefined, []);
    assert.ok(has(fs, S.OFFICE_CORRUPT), JSON.stringify(fs));
  });

  // Small members are read straight from the archive (one synchronous inflate), larger ones and
  // anything odd through zip.js: a member's headers that lie must not make the macro disappear.
  // A member inflating to more than it declares is OFFICE_CORRUPT (quarantined, as the macro would be).
  describe('a macro member whose headers lie is never clean', () => {
    const vba = 'word/vbaProject.bin';
    const lies: { label: string; level?: number; pad?: number; corruptToo?: boolean; patch: (z: Buffer, at: { local: number; central: number }) => void }[] = [
      {
        label: 'sizes understated in both headers',
        corruptToo: true,
        patch: (z, at) => (z.writeUInt32LE(100, at.local + 22), z.writeUInt32LE(100, at.central + 24)),
      },
      { label: 'size understated in the central directory only', corruptToo: true, patch: (z, at) => z.writeUInt32LE(100, at.central + 24) },
      { label: 'sizes overstated', patch: (z, at) => (z.writeUInt32LE(200_000, at.local + 22), z.writeUInt32LE(200_000, at.central + 24)) },
      { label: 'the local header says stored, the directory deflate', patch: (z, at) => z.writeUInt16LE(0, at.local + 8) },
      { label: 'the local header says encrypted, the directory not', patch: (z, at) => z.writeUInt16LE(z.readUInt16LE(at.local + 6) | 1, at.local + 6) },
      {
        label: 'stored, sizes understated',
        level: 0,
        corruptToo: true,
        patch: (z, at) => (z.writeUInt32LE(100, at.local + 22), z.writeUInt32LE(100, at.central + 24)),
      },
      { label: 'stored, honest', level: 0, patch: () => undefined },
      { label: 'just above the small-member size, honest', pad: 300 * 1024, patch: () => undefined },
      {
        label: 'just above the small-member size, declared small',
        pad: 300 * 1024,
        corruptToo: true,
        patch: (z, at) => z.writeUInt32LE(1000, at.central + 24),
      },
    ];
    for (const lie of lies) {
      it(lie.label, async () => {
        const cfb = buildVbaCfb();
        const data = lie.pad ? Buffer.concat([cfb, Buffer.alloc(lie.pad)]) : cfb;
        const doc = await buildDocx({ macroEnabled: true, declareVba: true, extra: [{ name: vba, data, level: lie.level }] });
        const fs = await scanAttachment(patchMember(doc, vba, lie.patch), 'invoice.docm', undefined, []);
        assert.ok(has(fs, S.OFFICE_MACRO) || (lie.corruptToo && has(fs, S.OFFICE_CORRUPT)), JSON.stringify(fs));
      });
    }

    it('a member whose data start lies (local name length) is never clean', async () => {
      const doc = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
      for (const shift of [1, 7, 64]) {
        const lied = patchMember(doc, vba, (z, at) => z.writeUInt16LE(z.readUInt16LE(at.local + 26) + shift, at.local + 26));
        const fs = await scanAttachment(lied, 'invoice.docm', undefined, []);
        assert.ok(has(fs, S.OFFICE_MACRO) || has(fs, S.OFFICE_CORRUPT), `shift ${shift}: ${JSON.stringify(fs)}`);
      }
    });
  });

  it('a zip member named like a PDF holding a macro document is a TYPE_MISMATCH', async () => {
    const z = await buildZip([{ name: 'scan_0042.pdf', data: docm }]);
    const fs = await scanAttachment(z, 'a.zip', undefined, []);
    assert.ok(has(fs, S.TYPE_MISMATCH) && has(fs, S.OFFICE_MACRO), JSON.stringify(fs));
  });
});
