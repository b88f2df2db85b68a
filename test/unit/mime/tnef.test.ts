// TNEF (winmail.dat): the reader against fixtures built in code, cross-checked with Debian's `tnef`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readTnef } from '../../../src/inspect/office/tnef.js';
import { scanAttachment } from '../../../src/inspect/office/index.js';
import { buildTnef, type TnefAttachmentSpec } from '../../fixtures/office/tnef-builder.js';
import { buildDocx, buildVbaCfb } from '../../fixtures/office/container-builders.js';

const hasTnefTool = spawnSync('tnef', ['--version']).status === 0;

describe('TNEF reader', () => {
  const a = randomBytes(3000);
  const b = randomBytes(77);
  const c = randomBytes(1);
  const specs: TnefAttachmentSpec[] = [
    { title: 'INVOIC~1.DOC', data: a },
    { title: 'ORDER.XLS', longName: 'Order for März 2024.xls', unicodeName: true, data: b },
    { longName: 'only-mapi.bin', mapiData: c },
  ];

  it('reads every attachment: attAttachData, PR_ATTACH_DATA_BIN, long (Unicode) names over titles', () => {
    const { attachments, truncated } = readTnef(buildTnef(specs));
    assert.equal(truncated, undefined);
    assert.deepEqual(
      attachments.map((x) => x.longName ?? x.title),
      ['INVOIC~1.DOC', 'Order for März 2024.xls', 'only-mapi.bin'],
    );
    assert.ok(attachments[0].data[0].equals(a));
    assert.ok(attachments[1].data[0].equals(b));
    assert.ok(attachments[2].data[0].equals(c));
  });

  it('a cut stream gives what it held before the cut, and says it was cut', () => {
    const whole = buildTnef(specs);
    const { attachments, truncated } = readTnef(whole.subarray(0, whole.length - 40));
    assert.ok(attachments.length >= 2);
    assert.match(truncated ?? '', /past the end/);
  });

  it('agrees with Debian tnef on names and bytes', function () {
    if (!hasTnefTool) {
      console.log('      skipped: needs the tnef program (Debian package tnef)');
      this.skip();
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-tnef-'));
    const file = path.join(dir, 'winmail.dat');
    writeFileSync(file, buildTnef(specs));
    const out = path.join(dir, 'out');
    spawnSync('mkdir', [out]);
    const r = spawnSync('tnef', ['-f', file, '-C', out, '--overwrite'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const theirs = Object.fromEntries(readdirSync(out).map((name) => [name, readFileSync(path.join(out, name))]));
    const ours = readTnef(buildTnef(specs)).attachments;
    assert.equal(Object.keys(theirs).length, ours.length, Object.keys(theirs).join());
    for (const attachment of ours) {
      const name = attachment.longName ?? attachment.title!;
      assert.ok(theirs[name], `tnef extracted ${name} (it has ${Object.keys(theirs).join(', ')})`);
      assert.ok(theirs[name].equals(attachment.data.at(-1)!), name);
    }
  });

  it('the engine scans what a winmail.dat carries, and an embedded message inside it', async () => {
    const docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
    const inner = buildTnef([{ title: 'INNER.DOC', longName: 'inner.docm', data: docm }]);
    for (const tnef of [
      buildTnef([{ title: 'INVOICE.DOC', longName: 'invoice.docm', data: docm }]),
      buildTnef([{ longName: 'Fwd message', embeddedTnef: inner }]),
    ]) {
      const findings = await scanAttachment(tnef, 'winmail.dat', 'application/ms-tnef', []);
      const macro = findings.find((f) => f.symbol === 'OFFICE_MACRO');
      assert.ok(macro, JSON.stringify(findings));
      assert.match(macro.part!, /^winmail\.dat > (invoice\.docm|Fwd message > inner\.docm) > word\/vbaProject\.bin/);
    }
  });
});
