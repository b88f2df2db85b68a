// gzip, tar, 7z, RAR 4/5, ISO 9660, UDF, CAB-like 7-Zip formats and ACE: each entry back through
// the engine under the message's budget; bombs end as ARCHIVE_LIMIT, locked archives open with the
// message's passwords or are held as unscannable.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { scanAttachment, scanBlob } from '../../../src/inspect/office/index.js';
import { sniff } from '../../../src/inspect/office/sniff.js';
import { DEFAULT_OFFICE_LIMITS, newBudget, OFFICE_SYMBOLS as S, type OfficeLimits, type ScanContext } from '../../../src/inspect/office/types.js';
import type { Finding } from '../../../src/inspect/finding.js';
import { buildDocx, buildVbaCfb } from '../../fixtures/office/container-builders.js';
import {
  build7z,
  build7zDictionaryBomb,
  buildNestedTar,
  buildTar,
  buildUdfImage,
  gzipConcat,
  gzipMember,
  hasGenisoimage,
} from '../../fixtures/containers/archives.js';
import { RunStopped, SevenZipRun } from '../../../src/inspect/office/sevenzip-wasm.js';
import { buildRar4, buildRar5 } from '../../fixtures/containers/rar.js';
import { buildIso } from '../../fixtures/containers/iso.js';

const symbols = (fs: Finding[]) => fs.map((f) => f.symbol);
const has = (fs: Finding[], sym: string) => fs.some((f) => f.symbol === sym);
const limits = (o: Partial<OfficeLimits>): OfficeLimits => ({ ...DEFAULT_OFFICE_LIMITS, ...o });
const ctxFor = (name: string, l: OfficeLimits = DEFAULT_OFFICE_LIMITS): ScanContext => ({
  path: [name],
  depth: 0,
  budget: newBudget(l),
  limits: l,
  passwords: [],
});

describe('office containers: gzip, tar, 7z, RAR, ISO, UDF', function () {
  this.timeout(60_000);
  let docm: Buffer;
  let docx: Buffer;
  before(async () => {
    docm = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
    docx = await buildDocx();
  });

  describe('gzip', () => {
    it('finds a macro document in a .doc.gz and names the path after the stored name', async () => {
      const fs = await scanAttachment(gzipMember(docm, { name: 'invoice.docm' }), 'invoice.docm.gz', 'application/gzip', []);
      const macro = fs.find((f) => f.symbol === S.OFFICE_MACRO);
      assert.ok(macro, JSON.stringify(fs));
      assert.match(macro.part!, /^invoice\.docm\.gz > invoice\.docm > word\/vbaProject\.bin/);
    });

    it('without a stored name the output is named after the attachment, and a clean document gives nothing', async () => {
      assert.equal(sniff(gzipMember(docx)), 'gzip');
      assert.deepEqual(await scanAttachment(gzipMember(docx), 'report.docx.gz', undefined, []), []);
      const fs = await scanAttachment(gzipMember(docm), 'report.docm.gz', undefined, []);
      assert.match(fs.find((f) => f.symbol === S.OFFICE_MACRO)!.part!, /^report\.docm\.gz > report\.docm > /);
    });

    it('a harmless first member does not hide a macro document in the second (concatenated members)', async () => {
      const gz = gzipConcat(gzipMember('just a note\n', { name: 'note.txt' }), gzipMember(docm, { name: 'invoice.docm' }));
      const fs = await scanAttachment(gz, 'invoice.gz', undefined, []);
      assert.ok(has(fs, S.OFFICE_MACRO), JSON.stringify(fs));
      assert.equal(fs.filter((f) => f.symbol === S.OFFICE_MACRO).length, 1, 'reported once');
    });

    it('a gzip bomb stops at the ratio cap without inflating it all', async () => {
      const bomb = gzipMember(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
      const ctx = ctxFor('bomb.gz');
      const t0 = Date.now();
      const fs = await scanBlob(bomb, ctx);
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT]);
      assert.match(fs[0].detail!, /inflates beyond 200x/);
      assert.ok(DEFAULT_OFFICE_LIMITS.maxBytes - ctx.budget.bytesLeft < 64 * 1024 * 1024);
      assert.ok(Date.now() - t0 < 10_000);
    });

    it('the byte budget caps what a gzip may inflate, whatever its ratio', async () => {
      const fs = await scanAttachment(gzipMember(randomBytes(2 * 1024 * 1024)), 'x.gz', undefined, [], limits({ maxBytes: 1024 * 1024 }));
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT]);
      assert.match(fs[0].detail!, /budget/);
    });

    it('a truncated gzip is corrupt (held), never relayed as clean', async () => {
      const gz = gzipMember(docm);
      assert.ok(has(await scanAttachment(gz.subarray(0, gz.length / 2), 'x.gz', undefined, []), S.OFFICE_CORRUPT));
    });
  });

  describe('tar', () => {
    it('scans every member of a tar and a .tgz', async () => {
      const tar = await buildTar([
        { name: 'docs/readme.txt', data: 'hello' },
        { name: 'docs/invoice.docm', data: docm },
      ]);
      assert.equal(sniff(tar), 'tar');
      const fs = await scanAttachment(tar, 'invoice.tar', undefined, []);
      assert.match(fs.find((f) => f.symbol === S.OFFICE_MACRO)!.part!, /^invoice\.tar > docs\/invoice\.docm > /);
      const tgz = await scanAttachment(gzipMember(tar), 'invoice.tgz', undefined, []);
      assert.match(tgz.find((f) => f.symbol === S.OFFICE_MACRO)!.part!, /^invoice\.tgz > invoice\.tar > docs\/invoice\.docm > /);
      assert.deepEqual(await scanAttachment(await buildTar([{ name: 'report.docx', data: docx }]), 'r.tar', undefined, []), []);
    });

    it('a tar of an .eml is a tar, not a message', async () => {
      const eml = 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n';
      assert.equal(sniff(await buildTar([{ name: 'mail.eml', data: eml }])), 'tar');
    });

    it('a deep tar nest ends at the depth limit', async () => {
      const deep = await buildNestedTar('invoice.docm', docm, 12);
      const fs = await scanAttachment(deep, 'a.tar', undefined, []);
      assert.ok(has(fs, S.ARCHIVE_LIMIT), JSON.stringify(fs));
      assert.match(fs.find((f) => f.symbol === S.ARCHIVE_LIMIT)!.detail!, /nesting deeper/);
      assert.ok(has(await scanAttachment(await buildNestedTar('invoice.docm', docm, 4), 'a.tar', undefined, []), S.OFFICE_MACRO));
    });

    it('the entry budget stops a tar with many members', async () => {
      const tar = await buildTar(Array.from({ length: 60 }, (_, i) => ({ name: `f${i}.txt`, data: `x${i}` })));
      const fs = await scanAttachment(tar, 'a.tar', undefined, [], limits({ maxEntries: 20 }));
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT]);
      assert.match(fs[0].detail!, /entry budget/);
    });
  });

  describe('7z (7-Zip in WebAssembly)', () => {
    it('finds a macro document in a 7z, nothing in a clean one', async () => {
      const fs = await scanAttachment(await build7z([{ name: 'invoice.docm', data: docm }]), 'invoice.7z', undefined, []);
      assert.match(fs.find((f) => f.symbol === S.OFFICE_MACRO)!.part!, /^invoice\.7z > invoice\.docm > /);
      assert.deepEqual(await scanAttachment(await build7z([{ name: 'report.docx', data: docx }]), 'r.7z', undefined, []), []);
    });

    it('opens encrypted entries and encrypted names with a password from the message, else holds them', async () => {
      for (const encryptNames of [false, true]) {
        const z = await build7z([{ name: 'invoice.docm', data: docm }], { password: 'Q7-2024', encryptNames });
        const locked = await scanAttachment(z, 'invoice.7z', undefined, []);
        assert.deepEqual(symbols(locked), [S.ARCHIVE_ENCRYPTED_UNSCANNABLE]);
        assert.match(locked[0].detail!, encryptNames ? /encrypted file names: no candidate password/ : /1 encrypted entry \(invoice\.docm\)/);
        const wrong = await scanAttachment(z, 'invoice.7z', undefined, ['2021', 'abc']);
        assert.match(wrong[0].detail!, /none of 2 candidate password/);
        const opened = await scanAttachment(z, 'invoice.7z', undefined, ['2021', 'Q7-2024']);
        assert.ok(has(opened, S.OFFICE_MACRO), JSON.stringify(opened));
      }
    });

    it('password attempts come from the message budget', async () => {
      const z = await build7z([{ name: 'invoice.docm', data: docm }], { password: 'right' });
      const fs = await scanAttachment(z, 'invoice.7z', undefined, ['a', 'b', 'c', 'right'], limits({ maxPasswordAttempts: 2 }));
      assert.deepEqual(symbols(fs), [S.ARCHIVE_ENCRYPTED_UNSCANNABLE]);
      assert.match(fs[0].detail!, /password attempts exhausted/);
    });

    it('a 7z bomb is ARCHIVE_LIMIT from its listing, before anything is extracted', async () => {
      const bomb = await build7z([{ name: 'zeros.bin', data: Buffer.alloc(24 * 1024 * 1024) }], { level: 1 });
      const ctx = ctxFor('bomb.7z');
      const fs = await scanBlob(bomb, ctx);
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT]);
      assert.match(fs[0].detail!, /declares 25165824 bytes, a ratio of/);
      assert.equal(ctx.budget.bytesLeft, DEFAULT_OFFICE_LIMITS.maxBytes, 'nothing extracted');
    });

    it('the byte budget is checked against the listed sizes', async () => {
      const z = await build7z([{ name: 'big.bin', data: randomBytes(3 * 1024 * 1024) }], { level: 0 });
      const fs = await scanAttachment(z, 'big.7z', undefined, [], limits({ maxBytes: 1024 * 1024 }));
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT]);
      assert.match(fs[0].detail!, /more than the 1048576 left in the budget/);
    });

    it('the sandbox stops an extraction at the output cap and at the deadline, whatever the headers say', async () => {
      const z = await build7z([{ name: 'data.bin', data: randomBytes(256 * 1024) }], { level: 0 });
      const capped = await SevenZipRun.create(z, { outputCap: 64 * 1024, deadline: Date.now() + 60_000 });
      assert.throws(
        () => capped.extract('x'),
        (e: unknown) => e instanceof RunStopped && e.reason === 'output' && e.written > 64 * 1024,
      );
      const late = await SevenZipRun.create(z, { outputCap: 1e9, deadline: Date.now() - 1 });
      assert.throws(
        () => late.extract('x'),
        (e: unknown) => e instanceof RunStopped && e.reason === 'time',
      );
      const fine = await SevenZipRun.create(z, { outputCap: 1e9, deadline: Date.now() + 60_000 });
      assert.equal(fine.extract('x').code, 0);
      assert.deepEqual(
        [...fine.files()].map((f) => [f.path, f.data.length]),
        [['data.bin', 256 * 1024]],
      );
    });

    it('a 7z declaring a 3.75 GB dictionary is ARCHIVE_LIMIT: the WebAssembly heap may not grow that far', async () => {
      const fs = await scanAttachment(await build7zDictionaryBomb(0xf0000000), 'x.7z', undefined, []);
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT]);
      assert.match(fs[0].detail!, /needs more than 512 MB of memory/);
    });

    it('a 7z with a broken header is unreadable, not "encrypted"', async () => {
      const z = await build7z([{ name: 'invoice.docm', data: docm }]);
      z.writeUInt32LE(0, 8); // start header CRC
      const fs = await scanAttachment(z, 'x.7z', undefined, []);
      assert.ok(!has(fs, S.ARCHIVE_ENCRYPTED_UNSCANNABLE), JSON.stringify(fs));
      assert.ok(has(fs, S.OFFICE_CORRUPT) || has(fs, S.ARCHIVE_UNSUPPORTED), JSON.stringify(fs));
    });

    it('7z inside a zip inside a 7z: recursion through both engines', async () => {
      const { buildZip } = await import('../../fixtures/office/container-builders.js');
      const inner = await build7z([{ name: 'a/invoice.docm', data: docm }]);
      const outer = await build7z([{ name: 'bundle.zip', data: await buildZip([{ name: 'inner.7z', data: inner }]) }]);
      const fs = await scanAttachment(outer, 'outer.7z', undefined, []);
      assert.match(fs.find((f) => f.symbol === S.OFFICE_MACRO)!.part!, /^outer\.7z > bundle\.zip > inner\.7z > a\/invoice\.docm > /);
    });

    it('xz and bzip2 single-file compressors go through 7-Zip too', async () => {
      for (const type of ['xz', 'bzip2']) {
        const c = await build7z([{ name: 'invoice.docm', data: docm }], { type });
        assert.equal(sniff(c), type);
        assert.ok(has(await scanAttachment(c, `invoice.docm.${type}`, undefined, []), S.OFFICE_MACRO), type);
      }
    });
  });

  describe('RAR (stored archives written from the format specs)', () => {
    it('RAR 4 and RAR 5: macro documents found, clean ones not', async () => {
      for (const build of [buildRar4, buildRar5]) {
        const rar = build([
          { name: 'note.txt', data: 'see attached' },
          { name: 'invoice.docm', data: docm },
        ]);
        assert.equal(sniff(rar), 'rar');
        const fs = await scanAttachment(rar, 'invoice.rar', undefined, []);
        assert.match(fs.find((f) => f.symbol === S.OFFICE_MACRO)?.part ?? '', /^invoice\.rar > invoice\.docm > /, `${build.name}: ${JSON.stringify(fs)}`);
        assert.deepEqual(await scanAttachment(build([{ name: 'report.docx', data: docx }]), 'r.rar', undefined, []), [], build.name);
      }
    });

    it('an encrypted RAR 5 entry opens with the password from the message', async () => {
      const rar = buildRar5([{ name: 'invoice.docm', data: docm, password: 'Rechnung!7' }]);
      assert.deepEqual(symbols(await scanAttachment(rar, 'r.rar', undefined, ['nope'])), [S.ARCHIVE_ENCRYPTED_UNSCANNABLE]);
      assert.ok(has(await scanAttachment(rar, 'r.rar', undefined, ['nope', 'Rechnung!7']), S.OFFICE_MACRO));
    });

    it('a RAR that 7-Zip cannot read is held, with the reason', async () => {
      const rar = buildRar5([{ name: 'invoice.docm', data: docm }]);
      const broken = Buffer.concat([rar.subarray(0, 8), Buffer.alloc(64, 0xff)]);
      const fs = await scanAttachment(broken, 'x.rar', undefined, []);
      assert.ok(has(fs, S.ARCHIVE_UNSUPPORTED) || has(fs, S.OFFICE_CORRUPT), JSON.stringify(fs));
      assert.match(fs[0].detail!, /RAR archive/);
    });
  });

  describe('disk images', () => {
    it('an ISO 9660 image is a disk image finding, and its files are scanned', async () => {
      const iso = buildIso([
        { name: 'readme.txt', data: 'open the document' },
        { name: 'invoice.doc', data: buildVbaCfb({ layout: 'word' }) },
      ]);
      assert.equal(sniff(iso), 'iso');
      const fs = await scanAttachment(iso, 'invoice.iso', undefined, []);
      assert.ok(has(fs, S.FILE_DISK_IMAGE), JSON.stringify(fs));
      assert.match(fs.find((f) => f.symbol === S.OFFICE_MACRO)!.part!, /^invoice\.iso > INVOICE\.DOC > /);
      assert.deepEqual(symbols(await scanAttachment(buildIso([{ name: 'report.docx', data: docx }]), 'r.iso', undefined, [])), [S.FILE_DISK_IMAGE]);
    });

    it('an ISO whose directory declares a 4 GB file is ARCHIVE_LIMIT before extraction', async () => {
      const iso = buildIso([{ name: 'huge.bin', data: 'tiny', declaredSize: 0xfffffff0 }]);
      const t0 = Date.now();
      const fs = await scanAttachment(iso, 'huge.iso', undefined, []);
      assert.ok(has(fs, S.ARCHIVE_LIMIT), JSON.stringify(fs));
      assert.match(fs.find((f) => f.symbol === S.ARCHIVE_LIMIT)!.detail!, /declares 4294967280 bytes/);
      assert.ok(Date.now() - t0 < 10_000);
    });

    it('a file that declares more than the image holds, within the budget: the ratio limit', async () => {
      const iso = buildIso([{ name: 'big.bin', data: 'tiny', declaredSize: 200 * 1024 * 1024 }]);
      const fs = await scanAttachment(iso, 'big.iso', undefined, []);
      assert.match(fs.find((f) => f.symbol === S.ARCHIVE_LIMIT)?.detail ?? '', /ratio/, JSON.stringify(fs));
    });

    it('a UDF image (genisoimage): its files are scanned', function () {
      if (!hasGenisoimage()) return this.skip(); // needs the Debian package genisoimage
      return (async () => {
        const udf = buildUdfImage([{ name: 'invoice.docm', data: docm }]);
        assert.equal(sniff(udf), 'udf');
        const fs = await scanAttachment(udf, 'invoice.img', undefined, []);
        assert.ok(has(fs, S.FILE_DISK_IMAGE));
        assert.ok(has(fs, S.OFFICE_MACRO), JSON.stringify(fs));
        assert.equal(fs.filter((f) => f.symbol === S.OFFICE_MACRO).length, 1, 'the ISO 9660 view of the bridge repeats the file: reported once');
      })();
    });
  });

  it('ACE archives are ARCHIVE_UNSUPPORTED, with the reason', async () => {
    const ace = Buffer.alloc(64);
    ace.write('**ACE**', 7, 'latin1');
    const fs = await scanAttachment(ace, 'invoice.ace', undefined, []);
    assert.deepEqual(symbols(fs), [S.ARCHIVE_UNSUPPORTED]);
    assert.match(fs[0].detail!, /ACE/);
  });

  it('an exhausted time budget is ARCHIVE_LIMIT for the new containers, not a hang', async () => {
    for (const [name, bytes] of [
      ['a.7z', await build7z([{ name: 'invoice.docm', data: docm }])],
      ['a.gz', gzipMember(docm)],
      ['a.tar', await buildTar([{ name: 'invoice.docm', data: docm }])],
    ] as const) {
      const ctx: ScanContext = { ...ctxFor(name), budget: { ...newBudget(DEFAULT_OFFICE_LIMITS), deadline: Date.now() - 1 } };
      const fs = await scanBlob(bytes, ctx);
      assert.deepEqual(symbols(fs), [S.ARCHIVE_LIMIT], name);
    }
  });
});
