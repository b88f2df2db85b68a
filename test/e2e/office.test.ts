// Macro documents through SMTP: the whole path from a client's DATA to the quarantine, with the
// findings an admin reads.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rawExchange, text, transaction } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { buildDocx, buildVbaCfb, buildZip } from '../fixtures/office/container-builders.js';
import { emailWith, forwarded } from '../fixtures/office/emails.js';
import type { QuarantineMetadata } from '../../src/quarantine/store.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';

async function docm(): Promise<Buffer> {
  return buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
}

describe('office documents through SMTP', function () {
  let sink: Sink;
  let dir: string;
  before(async () => {
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-office-'));
  });
  after(async () => sink.close());

  async function send(message: Buffer, overrides: string[] = []) {
    const gw = await startGateway(sink.port, [`quarantine.dir=${dir}`, ...overrides]);
    try {
      const r = await transaction(gw.port, MAIL, [RCPT], message);
      return { reply: text(r.data), log: gw.events('message').at(-1)! };
    } finally {
      await gw.close();
    }
  }

  function quarantined(reply: string): QuarantineMetadata {
    const id = /quarantined as ([0-9A-Z]{26})$/.exec(reply)?.[1];
    assert.ok(id, reply);
    return JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as QuarantineMetadata;
  }

  it('a .docm with an AutoOpen macro is quarantined, and the findings say where and why', async () => {
    const { reply, log } = await send(await emailWith([{ filename: 'invoice.docm', content: await docm() }]));
    const meta = quarantined(reply);
    const symbols = meta.findings.map((f) => f.symbol);
    assert.ok(symbols.includes('OFFICE_MACRO'), symbols.join());
    assert.ok(symbols.includes('OFFICE_MACRO_AUTOEXEC'), symbols.join());
    const macro = meta.findings.find((f) => f.symbol === 'OFFICE_MACRO')!;
    assert.match(macro.part!, /^invoice\.docm > word\/vbaProject\.bin/);
    assert.equal(log.verdict, 'quarantine');
  });

  it('the policy can reject macros instead: 550 5.7.1', async () => {
    const { reply } = await send(await emailWith([{ filename: 'invoice.docm', content: await docm() }]), ['verdict.symbols={OFFICE_MACRO: {action: reject}}']);
    assert.match(reply, /^550 5\.7\.1 /);
  });

  it('a clean .docx is relayed unchanged', async () => {
    const message = await emailWith([{ filename: 'report.docx', content: await buildDocx() }]);
    const { reply } = await send(message);
    assert.match(reply, /^250 2\.0\.0 Ok: queued as SINK/);
    assert.ok(sink.messages.at(-1)!.bytes.equals(message));
  });

  it('a macro document named .pdf with a PDF Content-Type, quoted-printable: found by content', async () => {
    const { reply } = await send(
      await emailWith([{ filename: 'scan.pdf', content: await docm(), contentType: 'application/pdf', encoding: 'quoted-printable' }]),
    );
    const symbols = quarantined(reply).findings.map((f) => f.symbol);
    assert.ok(symbols.includes('OFFICE_MACRO'));
    assert.ok(symbols.includes('TYPE_MISMATCH'));
  });

  it('a password-protected zip with the password in the body: opened and found', async () => {
    const zip = await buildZip([{ name: 'invoice.docm', data: await docm(), password: '2021' }]);
    const { reply } = await send(await emailWith([{ filename: 'invoice.zip', content: zip }], { text: 'The document is protected.\nPassword: 2021\n' }));
    const macro = quarantined(reply).findings.find((f) => f.symbol === 'OFFICE_MACRO');
    assert.ok(macro, 'macro found inside the encrypted zip');
    assert.match(macro.part!, /^invoice\.zip > invoice\.docm > /);
  });

  it('a password-protected zip without the password: quarantined as unscannable', async () => {
    const zip = await buildZip([{ name: 'invoice.docm', data: await docm(), password: 'secret-elsewhere' }]);
    const { reply } = await send(await emailWith([{ filename: 'invoice.zip', content: zip }]));
    assert.ok(quarantined(reply).findings.some((f) => f.symbol === 'ARCHIVE_ENCRYPTED_UNSCANNABLE'));
  });

  it('a forwarded message (message/rfc822) carrying a macro document is found', async () => {
    const inner = await emailWith([{ filename: 'invoice.docm', content: await docm() }]);
    const { reply } = await send(await forwarded(inner));
    const macro = quarantined(reply).findings.find((f) => f.symbol === 'OFFICE_MACRO');
    assert.ok(macro);
    // the walk opens the forwarded message: its attachment is scanned like a direct one, named by where it sits
    assert.match(macro.part!, /^invoice\.eml > invoice\.docm > /);
  });

  it('an exception by macro hash lets a known business macro through', async () => {
    const message = await emailWith([{ filename: 'form.docm', content: await docm() }]);
    const first = quarantined((await send(message)).reply);
    const hash = first.findings.find((f) => f.symbol === 'OFFICE_MACRO' && (f as { sha256?: string }).sha256) as { sha256?: string } | undefined;
    assert.ok(hash?.sha256, 'the macro finding carries the source hash');
    const { reply, log } = await send(message, [`verdict.exceptions=[{sha256: ["${hash.sha256}"], description: order form macro}]`]);
    assert.match(reply, /^250 2\.0\.0 Ok: queued as SINK/);
    assert.equal(log.verdict, 'relay');
  });
});

describe('office scans and the event loop', function () {
  it('a slow scan (expensive decryption) does not hold up other clients', async () => {
    const { buildAgileEncrypted } = await import('../fixtures/office/ole-builders.js');
    // 400,000 SHA-512 rounds per password tried, and no password will fit
    const slow = buildAgileEncrypted(await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() }), 'not-guessable', 400_000);
    const sink = await startSink();
    // rejected after its scan: the heavy message's reply then needs one downstream round trip (RSET),
    // far fewer than the light message's whole transaction: the order below is decided by the scan alone
    const gw = await startGateway(sink.port, ['verdict.symbols={OFFICE_ENCRYPTED_UNSCANNABLE: {action: reject}}']);
    try {
      const order: string[] = [];
      // the heavy message goes in one write (pipelined, dot included): its scan starts as soon as it is in.
      // Its text offers six wrong passwords: six key derivations (~1 s with the WebAssembly spin; one
      // alone can end before the light message is even sent)
      const wrong = ['Zq8#mW2x', 'Lp4$kR7v', 'Ht9!nB3c', 'Wd2%yF6j', 'Rk5&sG1m', 'Nb7*tQ4p'];
      const eml = (await emailWith([{ filename: 'locked.docx', content: slow }], { text: wrong.map((pw, i) => `Password ${i + 1}: ${pw}`).join('\n') }))
        .toString('latin1')
        .replace(/^\./gm, '..');
      const heavy = rawExchange(gw.port, `EHLO heavy.test\r\n${MAIL}\r\n${RCPT}\r\nDATA\r\n${eml}.\r\nQUIT\r\n`, 6, 60000).then((replies) =>
        order.push(`heavy ${replies[4]}`),
      );
      await new Promise((r) => setTimeout(r, 300));
      // a plain message: served by the event loop alone, whatever the scan workers are doing
      const light = transaction(gw.port, MAIL, [RCPT], 'Subject: lunch?\r\n\r\nAt noon?\r\n').then((r) => order.push(`light ${text(r.data)}`));
      await Promise.all([heavy, light]);
      assert.match(order[0], /^light 250 2\.0\.0 Ok: queued as SINK\d+$/);
      assert.match(order[1], /^heavy 550 5\.7\.1 Message rejected by policy/);
    } finally {
      await gw.close();
      await sink.close();
    }
  });
});
