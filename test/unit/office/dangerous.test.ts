// File types that run code when opened, in any container and as attachments: typed by content
// where the bytes say it, else by name; HTML smuggling; OneNote embedded files. And what must not
// be flagged: a .txt that mentions MZ, a newsletter, a report with a CSV button, a link.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { scanAttachment } from '../../../src/inspect/office/index.js';
import { sniff } from '../../../src/inspect/office/sniff.js';
import { effectiveExtension } from '../../../src/inspect/office/dangerous.js';
import { OFFICE_SYMBOLS as S } from '../../../src/inspect/office/types.js';
import type { Finding } from '../../../src/inspect/finding.js';
import { buildDocx, buildOneNote, buildVbaCfb, buildZip } from '../../fixtures/office/container-builders.js';
import { build7z, buildTar, gzipMember } from '../../fixtures/containers/archives.js';
import { buildIso } from '../../fixtures/containers/iso.js';
import { buildRar5 } from '../../fixtures/containers/rar.js';
import {
  buildChm,
  buildFatBootSector,
  buildFixedVhd,
  buildJar,
  buildLnk,
  buildMsi,
  buildPe,
  buildSmugglingHtml,
  buildVhdHeader,
  buildVhdx,
  ENCODED_SCRIPT,
  HTA,
  ORDINARY_HTML,
  VBS,
  WSF,
  type SmugglingStyle,
} from '../../fixtures/containers/dangerous.js';

const symbols = (fs: Finding[]) => fs.map((f) => f.symbol);
const scan = (b: Buffer | string, name?: string, ct?: string) => scanAttachment(typeof b === 'string' ? Buffer.from(b) : b, name, ct, []);

describe('dangerous file types', function () {
  this.timeout(60_000);

  describe('typed by content', () => {
    it('a PE is FILE_EXECUTABLE whatever its name, a DLL says so', async () => {
      assert.equal(sniff(buildPe()), 'pe');
      const exe = await scan(buildPe(), 'invoice.pdf', 'application/pdf');
      assert.deepEqual(symbols(exe), [S.FILE_EXECUTABLE]);
      assert.match(exe[0].detail!, /Windows executable \(PE\) named invoice\.pdf/);
      assert.match((await scan(buildPe({ dll: true }), 'update.dat'))[0].detail!, /DLL/);
      assert.match((await scan(buildPe(), 'setup.exe'))[0].detail!, /\(setup\.exe\)$/);
    });

    it('a text that starts with MZ or mentions PE is no executable', async () => {
      assert.deepEqual(await scan('MZ is the DOS header magic, PE\0\0 the NT one.\n', 'notes.txt', 'text/plain'), []);
      const fakeMz = Buffer.alloc(256, 0x20);
      fakeMz.write('MZ');
      fakeMz.writeUInt32LE(0x80, 0x3c);
      assert.deepEqual(await scan(fakeMz, 'data.bin'), []);
    });

    it('LNK, CHM, MSI, JAR, VHD, VHDX and a raw FAT volume by their bytes', async () => {
      const cases: [Buffer, string, string][] = [
        [buildLnk(), 'scan.pdf', S.FILE_SHORTCUT],
        [buildChm(), 'manual.dat', S.FILE_CHM],
        [buildMsi(), 'update.bin', S.FILE_INSTALLER],
        [await buildJar(), 'invoice.zip', S.FILE_JAVA_ARCHIVE],
        [buildVhdHeader(), 'disk.bin', S.FILE_DISK_IMAGE],
        [buildFixedVhd(Buffer.alloc(64 * 1024)), 'disk.bin', S.FILE_DISK_IMAGE],
        [buildVhdx(), 'disk.bin', S.FILE_DISK_IMAGE],
        [buildFatBootSector(), 'photo.dat', S.FILE_DISK_IMAGE],
      ];
      for (const [bytes, name, symbol] of cases) {
        const fs = await scan(bytes, name);
        assert.ok(has(fs, symbol), `${symbol} for ${name}: ${JSON.stringify(fs)}`);
      }
      // a plain Word document is a CFB too: no installer
      assert.ok(!has(await scan(buildVbaCfb({ layout: 'word', code: '' }), 'a.doc'), S.FILE_INSTALLER));
    });

    it('encoded scripts, HTA and WSF markup by their text, whatever the name', async () => {
      assert.match((await scan(ENCODED_SCRIPT, 'readme.txt'))[0].detail!, /encoded Windows script/);
      assert.deepEqual(symbols(await scan(HTA, 'invoice.html', 'text/html')), [S.FILE_HTML_APPLICATION]);
      assert.deepEqual(symbols(await scan(WSF, 'invoice.xml')), [S.FILE_SCRIPT]);
      // an ordinary XML with a <package> root (an ebook, a NuGet spec) is not a WSF
      assert.deepEqual(await scan('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf"><metadata/></package>', 'book.opf'), []);
    });
  });

  describe('typed by name where only the name says it', () => {
    it('scripts and programs without magic: .js .vbs .bat .cmd .ps1 .wsh .com .pif .url .iso .img', async () => {
      const cases: [string, string][] = [
        ['invoice.js', S.FILE_SCRIPT],
        ['invoice.vbs', S.FILE_SCRIPT],
        ['run.bat', S.FILE_SCRIPT],
        ['run.cmd', S.FILE_SCRIPT],
        ['a.ps1', S.FILE_SCRIPT],
        ['a.wsh', S.FILE_SCRIPT],
        ['a.com', S.FILE_EXECUTABLE],
        ['a.pif', S.FILE_EXECUTABLE],
        ['link.url', S.FILE_SHORTCUT],
        ['a.hta', S.FILE_HTML_APPLICATION],
        ['a.iso', S.FILE_DISK_IMAGE],
        ['a.img', S.FILE_DISK_IMAGE],
        ['setup.msi', S.FILE_INSTALLER],
        ['app.jar', S.FILE_JAVA_ARCHIVE],
      ];
      for (const [name, symbol] of cases) assert.deepEqual(symbols(await scan(VBS, name)), [symbol], name);
    });

    it('names written to dodge a suffix check still count', () => {
      for (const name of [
        'INVOICE.JS',
        'invoice.pdf.js',
        'invoice.js.',
        'invoice.js  ',
        'invoice．ｊｓ',
        'invoice\u202efdp.js',
        'invoice.js:Zone.Identifier',
        'C:\\x\\invoice.js',
        'dir/invoice.js',
        'invoice.js\0.pdf',
      ]) {
        assert.equal(effectiveExtension(name), 'js', JSON.stringify(name));
      }
      for (const name of ['invoice.json', 'js', '.js', 'invoice.pdf', 'report.docx']) assert.notEqual(effectiveExtension(name), 'js', name);
    });

    it('ordinary documents and pictures are not dangerous', async () => {
      for (const name of ['report.pdf', 'photo.jpg', 'notes.txt', 'data.csv', 'page.html']) assert.deepEqual(await scan('hello', name), [], name);
      assert.deepEqual(await scan(await buildDocx(), 'report.docx'), []);
    });
  });

  describe('in any container', () => {
    it('a shortcut, a script and a program inside zip, 7z, RAR, tar.gz and ISO are each found with their path', async () => {
      const files = [
        { name: 'Invoice.lnk', data: buildLnk() },
        { name: 'invoice.js', data: 'new ActiveXObject("WScript.Shell").Run("calc")' },
        { name: 'invoice.pdf', data: buildPe() },
      ];
      const containers: [string, Buffer][] = [
        ['a.zip', await buildZip(files)],
        ['a.7z', await build7z(files)],
        ['a.rar', buildRar5(files)],
        ['a.tar.gz', gzipMember(await buildTar(files))],
        ['a.iso', buildIso(files.map((f) => ({ ...f, name: f.name.toUpperCase() })))],
      ];
      for (const [name, bytes] of containers) {
        const fs = await scan(bytes, name);
        for (const sym of [S.FILE_SHORTCUT, S.FILE_SCRIPT, S.FILE_EXECUTABLE]) {
          const f = fs.find((x) => x.symbol === sym);
          assert.ok(f, `${sym} in ${name}: ${JSON.stringify(fs)}`);
          assert.ok(f.part!.startsWith(`${name} > `), f.part);
        }
      }
    });

    it('a disk image inside an archive is a finding, and its contents are scanned', async () => {
      const iso = buildIso([{ name: 'INVOICE.LNK', data: buildLnk() }]);
      const fs = await scan(await buildZip([{ name: 'invoice.img', data: iso }]), 'invoice.zip');
      assert.ok(
        fs.some((f) => f.symbol === S.FILE_DISK_IMAGE && f.part === 'invoice.zip > invoice.img'),
        JSON.stringify(fs),
      );
      assert.ok(fs.some((f) => f.symbol === S.FILE_SHORTCUT && f.part === 'invoice.zip > invoice.img > INVOICE.LNK'));
    });

    it('a zip that is also an ISO image (polyglot) has its disk view scanned', async () => {
      const iso = buildIso([{ name: 'RUN.LNK', data: buildLnk() }]);
      const zip = await buildZip([{ name: 'readme.txt', data: 'hello' }]);
      // the zip's central directory is found from the end; the ISO's descriptors sit at 32 KB
      const polyglot = Buffer.concat([iso, zip]);
      assert.equal(sniff(polyglot), 'zip');
      const fs = await scan(polyglot, 'files.zip');
      assert.ok(has(fs, S.FILE_DISK_IMAGE), JSON.stringify(fs));
      assert.ok(has(fs, S.FILE_SHORTCUT));
    });
  });

  describe('OneNote', () => {
    it('an embedded file that is not a picture is ONENOTE_EMBEDDED_FILE, and it is scanned', async () => {
      const fs = await scan(buildOneNote(Buffer.from(HTA)), 'invoice.one');
      assert.ok(has(fs, S.ONENOTE_EMBEDDED_FILE), JSON.stringify(fs));
      assert.ok(fs.some((f) => f.symbol === S.FILE_HTML_APPLICATION && f.part === 'invoice.one > embedded#1'));
    });

    it('a pasted picture is not an embedded file', async () => {
      const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(2000)]);
      assert.deepEqual(await scan(buildOneNote(png), 'notes.one'), []);
    });
  });

  describe('HTML smuggling', () => {
    const styles: SmugglingStyle[] = ['blob-anchor', 'ms-save', 'data-uri', 'char-codes', 'split-literals', 'svg'];

    it('each style is HTML_SMUGGLING, and the smuggled file is scanned', async () => {
      const docm = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
      const zip = await buildZip([{ name: 'Invoice.lnk', data: buildLnk() }]);
      for (const style of styles) {
        const small = style === 'char-codes' || style === 'ms-save';
        const fs = await scan(buildSmugglingHtml(small ? zip : docm, small ? 'invoice.zip' : 'invoice.docm', style), 'invoice.html', 'text/html');
        const smuggling = fs.find((f) => f.symbol === S.HTML_SMUGGLING);
        assert.ok(smuggling, `${style}: ${JSON.stringify(fs)}`);
        if (small)
          assert.ok(
            fs.some((f) => f.symbol === S.FILE_SHORTCUT && f.part === 'invoice.html > invoice.zip > Invoice.lnk'),
            style,
          );
        else
          assert.ok(
            fs.some((f) => f.symbol === S.OFFICE_MACRO && f.part!.startsWith('invoice.html > invoice.docm > ')),
            `${style}: ${JSON.stringify(fs)}`,
          );
      }
    });

    it('a newsletter with data: pictures, a report with a CSV button, a download link: nothing', async () => {
      const picture = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), randomBytes(6000)]);
      assert.deepEqual(await scan(ORDINARY_HTML.newsletter(picture), 'newsletter.html', 'text/html'), []);
      assert.deepEqual(await scan(ORDINARY_HTML.csvButton(picture), 'report.html', 'text/html'), []);
      assert.deepEqual(await scan(ORDINARY_HTML.link, 'invoice.html', 'text/html'), []);
    });

    it('hostile markup is scanned in linear time', async () => {
      const t0 = Date.now();
      const evil = `<html><script>createObjectURL(x); a.download='x'; new Blob([]);${'<a download '.repeat(200_000)}${'A'.repeat(1023)} `.repeat(4);
      await scan(evil, 'x.html');
      assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
    });
  });
});

function has(fs: Finding[], sym: string): boolean {
  return fs.some((f) => f.symbol === sym);
}
