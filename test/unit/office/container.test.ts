import assert from 'node:assert/strict';
import { findPasswords, scanAttachment } from '../../../src/inspect/office/index.js';
import { OFFICE_SYMBOLS as S } from '../../../src/inspect/office/types.js';
import { MAX_PASSWORDS } from '../../../src/inspect/office/passwords.js';
import type { Finding } from '../../../src/inspect/finding.js';
import CFB from 'cfb';
import {
  biff12MacroSheet,
  buildDocx,
  buildFlatOpc,
  buildMht,
  buildOneNote,
  buildPlainCfb,
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

const syms = (fs: Finding[]) => fs.map((f) => f.symbol);
const has = (fs: Finding[], sym: string) => fs.some((f) => f.symbol === sym);
const scan = (b: Buffer, name?: string, ct?: string, pw: string[] = []) => scanAttachment(b, name, ct, pw);

describe('office containers: OOXML', () => {
  it('docm with a vbaProject.bin: the CFB member goes to the OLE scanner', async () => {
    const docm = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
    const fs = await scan(docm, 'invoice.docm');
    assert.ok(has(fs, S.OFFICE_MACRO) && has(fs, S.OFFICE_MACRO_AUTOEXEC), JSON.stringify(fs));
    assert.ok(
      fs.every((f) => f.part!.startsWith('invoice.docm > word/vbaProject.bin')),
      JSON.stringify(fs),
    );
    assert.ok(!has(fs, S.TYPE_MISMATCH));
  });

  it('a CFB member is a VBA candidate whatever its name and content type', async () => {
    const docx = await buildDocx({ extra: [{ name: 'word/media/image1.png', data: buildVbaCfb() }] });
    const fs = await scan(docx, 'report.docm');
    const m = fs.find((f) => f.symbol === S.OFFICE_MACRO);
    assert.ok(m && m.part!.includes('word/media/image1.png'), JSON.stringify(fs));
  });

  it('an empty VBA project is reported as such, not as a macro', async () => {
    const fs = await scan(await buildDocx({ vbaProject: buildVbaCfb({ code: '' }), macroEnabled: true }), 'a.docm');
    assert.ok(has(fs, S.OFFICE_VBA_PROJECT_EMPTY) && !has(fs, S.OFFICE_MACRO), JSON.stringify(fs));
  });

  it('a .docx that lies (macro-enabled package or VBA inside) is a TYPE_MISMATCH; an honest docx is clean', async () => {
    const lying = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
    const fs = await scan(lying, 'invoice.docx');
    assert.ok(has(fs, S.TYPE_MISMATCH) && has(fs, S.OFFICE_MACRO), JSON.stringify(fs));
    const onlyType = await scan(await buildDocx({ macroEnabled: true }), 'invoice.docx');
    assert.deepEqual(syms(onlyType), [S.TYPE_MISMATCH]);
    const viaCt = await scan(lying, undefined, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    assert.ok(has(viaCt, S.TYPE_MISMATCH));
    assert.deepEqual(await scan(await buildDocx(), 'letter.docx'), []);
    assert.deepEqual(await scan(await buildDocx({ macroEnabled: true }), 'letter.docm'), [], 'macro-enabled type without VBA is clean');
  });

  it('xlsm macro sheet formulas are XLM (EXEC suspicious, Auto_Open auto-run); an empty macro sheet is not a macro', async () => {
    const xlsm = await buildXlsx({
      macroEnabled: true,
      macroSheetXml: macroSheetXml(['=EXEC("cmd /c calc.exe")', '=HALT()']),
      definedNames: { '_xlnm.Auto_Open': 'Macro1!$A$1' },
    });
    const fs = await scan(xlsm, 'a.xlsm');
    assert.ok(has(fs, S.OFFICE_XLM_MACRO) && has(fs, S.OFFICE_MACRO_SUSPICIOUS) && has(fs, S.OFFICE_MACRO_AUTOEXEC), JSON.stringify(fs));
    assert.match(fs.find((f) => f.symbol === S.OFFICE_XLM_MACRO)!.part!, /a\.xlsm > xl\/macrosheets\/sheet1\.xml/);
    const empty = await scan(await buildXlsx({ macroEnabled: true, macroSheetXml: macroSheetXml([]) }), 'b.xlsm');
    assert.ok(!has(empty, S.OFFICE_XLM_MACRO) && has(empty, S.OFFICE_VBA_PROJECT_EMPTY), JSON.stringify(empty));
  });

  it('an .xlsx holding a macro sheet is XLM and a TYPE_MISMATCH', async () => {
    const fs = await scan(await buildXlsx({ macroSheetXml: macroSheetXml(['=RUN("x")']) }), 'prices.xlsx');
    assert.ok(has(fs, S.OFFICE_XLM_MACRO) && has(fs, S.TYPE_MISMATCH), JSON.stringify(fs));
  });

  it('binary (.xlsb) macro sheets are detected from their BIFF12 formula records', async () => {
    const fs = await scan(await buildXlsx({ macroEnabled: true, macroSheetBin: biff12MacroSheet(['calc.exe']) }), 'a.xlsb');
    assert.ok(has(fs, S.OFFICE_XLM_MACRO), JSON.stringify(fs));
    assert.ok(has(fs, S.OFFICE_MACRO_SUSPICIOUS), 'EXEC recognised in the parsed formula');
    const empty = await scan(await buildXlsx({ macroEnabled: true, macroSheetBin: biff12MacroSheet([]) }), 'b.xlsb');
    assert.ok(!has(empty, S.OFFICE_XLM_MACRO));
  });

  it('embedded OLE objects and documents inside a package are scanned', async () => {
    const inner = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
    const pptx = await buildDocx({
      extra: [
        { name: 'ppt/embeddings/Microsoft_Word_Document.docm', data: inner },
        { name: 'ppt/embeddings/oleObject1.bin', data: buildPlainCfb() },
      ],
    });
    const fs = await scan(pptx, 'deck.pptm');
    assert.ok(
      fs.some((f) => f.symbol === S.OFFICE_MACRO && f.part!.includes('ppt/embeddings/Microsoft_Word_Document.docm > word/vbaProject.bin')),
      JSON.stringify(fs),
    );
  });
});

describe('office containers: RTF', () => {
  it('objdata holding an OLE 1.0 object with a macro document is a macro finding', async () => {
    const rtf = buildRtf(ole1Object('Word.Document.8', buildVbaCfb({ layout: 'word' })));
    const fs = await scan(rtf, 'order.rtf');
    const m = fs.find((f) => f.symbol === S.OFFICE_MACRO);
    assert.ok(m, JSON.stringify(fs));
    assert.match(m.part!, /^order\.rtf > objdata#1 \(Word\.Document\.8\)/);
  });

  it('tolerates whitespace, uppercase hex, junk groups and control words, \\bin runs and a sloppy header', async () => {
    const ole = ole1Object('Word.Document.8', buildVbaCfb({ layout: 'word' }));
    for (const opts of [{ obfuscate: true }, { bin: true }, { obfuscate: true, bin: true, header: '{\\rtx1234junk' }]) {
      const fs = await scan(buildRtf(ole, opts), 'x.doc');
      assert.ok(has(fs, S.OFFICE_MACRO), `${JSON.stringify(opts)}: ${JSON.stringify(fs)}`);
    }
  });

  it('an OLE Package carrying a zipped macro document is scanned; a truncated objdata does not throw', async () => {
    const docm = await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true });
    const fs = await scan(buildRtf(ole1Object('Package', olePackage('invoice.docm', docm))), 'a.rtf');
    assert.ok(
      fs.some((f) => f.symbol === S.OFFICE_MACRO && f.part!.includes('Package invoice.docm')),
      JSON.stringify(fs),
    );
    const rtf = buildRtf(ole1Object('Word.Document.8', buildVbaCfb({ layout: 'word' })));
    for (const cut of [40, 300, 900, rtf.length - 200]) {
      const r = await scan(rtf.subarray(0, cut), 'a.rtf');
      assert.ok(Array.isArray(r));
    }
  });

  it('an RTF without objects is clean', async () => {
    assert.deepEqual(await scan(Buffer.from('{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\f0 Hello {\\b world}\\par}'), 'a.rtf'), []);
  });
});

describe('office containers: Word 2003 XML, Flat OPC, MHT, ActiveMime', () => {
  it('Word 2003 XML editdata.mso (ActiveMime → zlib → CFB) is a macro', async () => {
    const fs = await scan(buildWord2003Xml(buildVbaCfb()), 'a.xml');
    const m = fs.find((f) => f.symbol === S.OFFICE_MACRO);
    assert.ok(m && m.part!.startsWith('a.xml > editdata.mso > ActiveMime'), JSON.stringify(fs));
    assert.deepEqual(await scan(buildWord2003Xml(null), 'b.xml'), []);
  });

  it('Flat OPC vbaProject binaryData (plain CFB) and macro sheets are scanned', async () => {
    assert.ok(has(await scan(buildFlatOpc(buildVbaCfb()), 'a.xml'), S.OFFICE_MACRO));
    const xlm = await scan(buildFlatOpc(null, macroSheetXml(['=EXEC("calc")'])), 'b.xml');
    assert.ok(has(xlm, S.OFFICE_XLM_MACRO), JSON.stringify(xlm));
    assert.deepEqual(await scan(buildFlatOpc(null), 'c.xml'), []);
  });

  it('MHT with an ActiveMime part is a macro, also with junk before the MIME header', async () => {
    assert.ok(has(await scan(buildMht(buildVbaCfb()), 'a.doc'), S.OFFICE_MACRO));
    assert.ok(has(await scan(buildMht(buildVbaCfb(), { junkBefore: 'Lorem ipsum\r\n' }), 'a.doc'), S.OFFICE_MACRO));
    assert.deepEqual(await scan(buildMht(null), 'a.mht'), []);
  });

  it('a broken ActiveMime is OFFICE_CORRUPT, not a throw', async () => {
    const bad = Buffer.concat([Buffer.from('ActiveMime'), Buffer.alloc(100, 0x78)]);
    assert.deepEqual(syms(await scan(bad, 'editdata.mso')), [S.OFFICE_CORRUPT]);
  });
});

describe('office containers: SYLK, OneNote, type mismatch', () => {
  it('SYLK macro sheet with EXEC is XLM and suspicious; Auto_Open is auto-run', async () => {
    const fs = await scan(buildSylk(['=EXEC("cmd.exe /c calc")', '=HALT()'], { macroSheet: true, autoOpen: true }), 'a.slk');
    assert.ok(has(fs, S.OFFICE_XLM_MACRO) && has(fs, S.OFFICE_MACRO_SUSPICIOUS) && has(fs, S.OFFICE_MACRO_AUTOEXEC), JSON.stringify(fs));
    const noOption = await scan(buildSylk(['=CALL("kernel32","WinExec","JCJ","calc",0)']), 'b.csv');
    assert.ok(has(noOption, S.OFFICE_XLM_MACRO), JSON.stringify(noOption));
  });

  it('a plain SYLK spreadsheet with ordinary formulas is clean', async () => {
    assert.deepEqual(await scan(buildSylk(['=SUM(R1C1:R2C1)', '=A1*2']), 'a.slk'), []);
  });

  it('OneNote embedded files are scanned', async () => {
    const fs = await scan(buildOneNote(await buildDocx({ vbaProject: buildVbaCfb(), macroEnabled: true })), 'a.one');
    assert.ok(
      fs.some((f) => f.symbol === S.OFFICE_MACRO && f.part!.startsWith('a.one > embedded#1')),
      JSON.stringify(fs),
    );
  });

  it('Office content behind a PDF/text/image name or Content-Type is a TYPE_MISMATCH', async () => {
    const doc = buildVbaCfb({ layout: 'word' });
    for (const [name, ct] of [
      ['scan.pdf', undefined],
      ['notes.txt', undefined],
      [undefined, 'application/pdf'],
      ['a', 'image/jpeg; name=a.jpg'],
    ] as const) {
      const fs = await scan(doc, name, ct);
      assert.ok(has(fs, S.TYPE_MISMATCH), `${name} ${ct}: ${JSON.stringify(fs)}`);
    }
    assert.ok(has(await scan(await buildZip([{ name: 'a.txt', data: 'x' }]), 'report.pdf'), S.TYPE_MISMATCH));
    assert.ok(has(await scan(doc, 'invoice.docx'), S.TYPE_MISMATCH), 'a .doc behind a .docx name');
    assert.ok(!has(await scan(doc, 'invoice.doc', 'application/msword'), S.TYPE_MISMATCH));
    assert.deepEqual(await scan(Buffer.from('%PDF-1.7 hello'), 'a.pdf', 'application/pdf'), []);
  });

  it('an encrypted OOXML package (a CFB with EncryptedPackage) behind a .docx name is not a mismatch', async () => {
    const cfb = CFB.utils.cfb_new();
    CFB.utils.cfb_add(cfb, '/EncryptionInfo', Buffer.from([4, 0, 4, 0, 0x40, 0, 0, 0]));
    CFB.utils.cfb_add(cfb, '/EncryptedPackage', Buffer.alloc(8192, 7));
    const fs = await scan(Buffer.from(CFB.write(cfb, { type: 'buffer' }) as Uint8Array), 'secret.docx');
    assert.ok(!has(fs, S.TYPE_MISMATCH), JSON.stringify(fs));
  });
});

describe('office containers: password candidates', () => {
  const cases: [string, string][] = [
    ['Password: 2021', '2021'],
    ['The password is 7788', '7788'],
    ['password for the attached file: Qx81!', 'Qx81!'],
    ['パスワード: 5566', '5566'],
    ['解凍パスワード：abc123', 'abc123'],
    ['PW：xk9z', 'xk9z'],
    ['pwd=hunter2', 'hunter2'],
    ['Kennwort: Sommer24', 'Sommer24'],
    ['Das Passwort ist 4711.', '4711'],
    ['mot de passe : azerty', 'azerty'],
    ['Contraseña: 1234', '1234'],
    ['Пароль: qwe', 'qwe'],
    ['Please open the file.\nPassword:\n\n  ZX81\nThanks', 'ZX81'],
    ['The password is "open sesame".', 'open sesame'],
    ['<p>Password: <b>R2D2</b></p>', 'R2D2'],
  ];
  for (const [text, pw] of cases) {
    it(`finds ${JSON.stringify(pw)} in ${JSON.stringify(text)}`, () => {
      assert.ok(findPasswords(text).includes(pw), JSON.stringify(findPasswords(text)));
    });
  }

  it('quoted tokens count when the text speaks of a password; dedupes and caps (passwords.test.ts has the phrasing families)', () => {
    assert.ok(findPasswords('Use the password we agreed: see below. It is "tiger77".').includes('tiger77'));
    assert.deepEqual(findPasswords('Meeting at 10, bring "snacks".'), []);
    const many = Array.from({ length: 30 }, (_, i) => `Password: p${i}\nPassword: p${i}`).join('\n');
    const got = findPasswords(many);
    assert.equal(got.length, MAX_PASSWORDS);
    assert.equal(new Set(got).size, got.length);
  });
});
