import assert from 'node:assert/strict';
import { sniff } from '../../../src/inspect/office/sniff.js';
import {
  buildDocx,
  buildFlatOpc,
  buildMht,
  buildOneNote,
  buildPlainCfb,
  buildRtf,
  buildSylk,
  buildWord2003Xml,
  buildZip,
  activeMime,
  ole1Object,
} from '../../fixtures/office/container-builders.js';

describe('office sniff: kind by magic bytes only', () => {
  it('recognises CFB, zip/OOXML, OneNote before zip, LNK', async () => {
    assert.equal(sniff(buildPlainCfb()), 'cfb');
    assert.equal(sniff(await buildDocx()), 'zip');
    assert.equal(sniff(await buildZip([{ name: 'a.txt', data: 'x' }])), 'zip');
    // a .one embedding a .docx: an end-of-central-directory test would call it a zip
    assert.equal(sniff(buildOneNote(await buildDocx())), 'onenote');
    const lnk = Buffer.concat([Buffer.from([0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46]), Buffer.alloc(60)]);
    assert.equal(sniff(lnk), 'lnk');
  });

  it('recognises empty and spanned zip signatures, and zips with prepended data', async () => {
    const empty = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]);
    assert.equal(sniff(empty), 'zip');
    const z = await buildZip([{ name: 'a.txt', data: 'x' }]);
    assert.equal(sniff(Buffer.concat([Buffer.from('PK\x07\x08', 'latin1'), z])), 'zip');
    assert.equal(sniff(Buffer.concat([Buffer.from('MZ junk stub before the archive'), z])), 'zip');
  });

  it('recognises RTF as Word does: {\\rt prefix, whatever follows', () => {
    assert.equal(sniff(buildRtf(ole1Object('Package', Buffer.from('x')))), 'rtf');
    assert.equal(sniff(Buffer.from('{\\rtf1\\ansi hello}')), 'rtf');
    assert.equal(sniff(Buffer.from('{\\rtx junk')), 'rtf');
    assert.equal(sniff(Buffer.from('{\\rt')), 'rtf');
    assert.equal(sniff(Buffer.from('\ufeff{\\rtf1}')), 'rtf');
    assert.equal(sniff(Buffer.from('{\\r')), 'other');
  });

  it('recognises SYLK, Word 2003 XML, Flat OPC, MHT, ActiveMime (raw and base64)', () => {
    assert.equal(sniff(buildSylk(['=EXEC("calc")'])), 'sylk');
    assert.equal(sniff(buildWord2003Xml(null)), 'word2003');
    assert.equal(sniff(Buffer.from(buildWord2003Xml(null).toString('utf8'), 'utf16le')), 'word2003');
    assert.equal(sniff(buildFlatOpc(null)), 'flatopc');
    assert.equal(sniff(buildMht(null)), 'mht');
    assert.equal(sniff(buildMht(null, { junkBefore: 'junk junk\r\n' })), 'mht');
    const am = activeMime(buildPlainCfb());
    assert.equal(sniff(am), 'activemime');
    assert.equal(sniff(Buffer.from(am.toString('base64'))), 'activemime');
  });

  it('everything else is other: text, PDF, HTML, plain XML, tiny and empty blobs', () => {
    for (const s of ['', 'P', 'PK', 'hello world', '%PDF-1.7\n', '<html><body>x</body></html>', '<?xml version="1.0"?><a/>', 'IDx', '\x00\x01']) {
      assert.equal(sniff(Buffer.from(s, 'latin1')), 'other', JSON.stringify(s));
    }
  });
});
