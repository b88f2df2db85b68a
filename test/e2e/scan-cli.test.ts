// `mailmoat scan` as an admin runs it: real files, a real process, clamscan's exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../helpers/gateway.js';
import { buildDocx, buildVbaCfb } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';
import type { FileResult } from '../../src/cli/scan.js';

const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const scan = (...args: string[]) => spawnSync(process.execPath, [main, 'scan', ...args], { encoding: 'utf8' });

describe('mailmoat scan', function () {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-scan-'));
    const docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
    mkdirSync(path.join(dir, 'inbox', 'nested'), { recursive: true });
    writeFileSync(path.join(dir, 'inbox', 'invoice.docm'), docm);
    writeFileSync(path.join(dir, 'inbox', 'report.docx'), await buildDocx());
    writeFileSync(path.join(dir, 'inbox', 'nested', 'mail.eml'), await emailWith([{ filename: 'order.doc', content: docm }]));
    writeFileSync(path.join(dir, 'clean.docx'), await buildDocx());
  });

  it('exits 0 and prints OK when nothing is found', () => {
    const r = scan(path.join(dir, 'clean.docx'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${path.join(dir, 'clean.docx')}: OK\n`);
  });

  it('walks directories, scans attachments and .eml messages alike, exits 1 on findings', () => {
    const r = scan(path.join(dir, 'inbox'));
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /invoice\.docm: QUARANTINE score=\d+ OFFICE_MACRO OFFICE_MACRO_AUTOEXEC OFFICE_MACRO_SUSPICIOUS$/);
    assert.match(lines[1], /nested\/mail\.eml: QUARANTINE score=\d+ .*OFFICE_MACRO/);
    assert.match(lines[2], /report\.docx: OK$/);
  });

  it('--verbose names where each finding is, why, and the macro hash an exception can use', () => {
    const r = scan('--verbose', path.join(dir, 'inbox', 'invoice.docm'));
    assert.match(r.stdout, /^ {2}OFFICE_MACRO \(10\) at invoice\.docm > word\/vbaProject\.bin > VBA > Module1: procedures: AutoOpen sha256=[0-9a-f]{64}$/m);
  });

  it('--json prints one object per file, and the policy changes the verdict as in the gateway', () => {
    const r = scan('--json', '--set', 'verdict.symbols={OFFICE_MACRO: {action: reject}}', path.join(dir, 'inbox', 'invoice.docm'));
    const result = JSON.parse(r.stdout) as FileResult;
    assert.equal(result.kind, 'file');
    assert.equal(result.verdict?.action, 'reject');
    assert.ok(result.verdict?.findings.some((f: { symbol: string }) => f.symbol === 'OFFICE_MACRO'));
  });

  it('takes the envelope sender from Return-Path, or from --envelope-from as the gateway would have seen it', () => {
    const eml = path.join(dir, 'reply.eml');
    writeFileSync(
      eml,
      'Return-Path: <alice@partner.test>\r\nFrom: Alice <alice@partner.test>\r\nTo: bob@internal.test\r\nSubject: Re: order\r\nIn-Reply-To: <1@partner.test>\r\n\r\nThanks.\r\n',
    );
    const asArchived = JSON.parse(scan('--json', eml).stdout) as FileResult;
    assert.ok(!asArchived.verdict?.findings.some((f: { symbol: string }) => /FROM_ENVELOPE_MISMATCH/.test(f.symbol)));
    const spoofed = JSON.parse(
      scan('--json', '--envelope-from', 'bounce@elsewhere.test', '--client-ip', '203.0.113.9', '--helo', 'pc17', eml).stdout,
    ) as FileResult;
    assert.ok(spoofed.verdict?.findings.some((f: { symbol: string }) => f.symbol === 'SPOOF_REPLY_FROM_ENVELOPE_MISMATCH'));
  });

  it('exits 2 when a file cannot be read, after scanning the others', () => {
    const r = scan(path.join(dir, 'missing.doc'), path.join(dir, 'clean.docx'));
    assert.equal(r.status, 2);
    assert.match(r.stdout, /missing\.doc: ERROR ENOENT/);
    assert.match(r.stdout, /clean\.docx: OK/);
  });
});
