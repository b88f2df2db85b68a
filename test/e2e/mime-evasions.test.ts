// The MIME evasion family through the SMTP front end and through `mailmoat scan`: a generated
// macro document hidden in every way a mail client still opens it (encodings × declared types ×
// dispositions × names, header shapes, single-part bodies, forwarded messages, TNEF, an .eml in a
// zip) is quarantined with its macro found; the same documents sent plainly still are; genuine
// mail of the same shapes gets no MIME or Office finding.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { repoRoot, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { emailWith } from '../fixtures/office/emails.js';
import { evasionFamily, genuineMail, macroDocuments, zippedMessages, type Variant } from '../fixtures/mime/evasions.js';

const MAIL = 'MAIL FROM:<alice@partner.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';
const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
/** symbols that say "a document was found" or "the structure was odd": genuine mail gets none */
const CONTENT_SYMBOL = /^(OFFICE_|ARCHIVE_|MIME_|TYPE_MISMATCH)/;

describe('MIME evasions: every leaf a client opens is scanned', function () {
  let sink: Sink;
  let gw: RunningGateway;
  let dir: string;
  let family: Variant[];
  let plain: Variant[];
  let genuine: Variant[];

  before(async () => {
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-mime-'));
    gw = await startGateway(sink.port, [`quarantine.dir=${path.join(dir, 'quarantine')}`]);
    const docs = await macroDocuments();
    family = evasionFamily(docs, { eml: await zippedMessages(docs) });
    plain = [
      { name: 'plain .doc attachment', eml: await emailWith([{ filename: 'invoice.doc', content: docs.doc }]) },
      { name: 'plain .docm attachment', eml: await emailWith([{ filename: 'invoice.docm', content: docs.docm }]) },
    ];
    genuine = genuineMail();
  });
  after(async () => {
    await gw.close();
    await sink.close();
  });

  async function send(variant: Variant): Promise<{ reply: string; verdict: unknown; symbols: string[]; findings: { symbol: string; part?: string }[] }> {
    const r = await transaction(gw.port, MAIL, [RCPT], variant.eml);
    const reply = text(r.data);
    const log = gw.events('message').at(-1)!;
    const id = /quarantined as ([0-9A-Z]{26})$/.exec(reply)?.[1];
    const findings = id
      ? (JSON.parse(readFileSync(path.join(dir, 'quarantine', `${id}.json`), 'utf8')) as { findings: { symbol: string; part?: string }[] }).findings
      : [];
    return { reply, verdict: log.verdict, symbols: log.symbols as string[], findings };
  }

  it('is a family of at least 60 distinct variants', () => {
    assert.ok(family.length >= 60, `${family.length} variants`);
    assert.equal(new Set(family.map((v) => v.name)).size, family.length);
    assert.equal(new Set(family.map((v) => v.eml.toString('base64'))).size, family.length);
  });

  it('through SMTP: every variant is quarantined with its macro found', async () => {
    const missed: string[] = [];
    for (const variant of family) {
      const { reply, verdict, findings } = await send(variant);
      const macro = findings.find((f) => f.symbol === 'OFFICE_MACRO');
      if (verdict !== 'quarantine' || !/^250 .*quarantined as/.test(reply) || !macro)
        missed.push(`${variant.name}: ${reply} ${findings.map((f) => f.symbol).join(',')}`);
    }
    assert.deepEqual(missed, [], `${missed.length} of ${family.length} missed`);
  });

  it('through SMTP: the same documents sent plainly are still quarantined', async () => {
    for (const variant of plain) {
      const { verdict, findings } = await send(variant);
      assert.equal(verdict, 'quarantine', variant.name);
      assert.ok(
        findings.some((f) => f.symbol === 'OFFICE_MACRO' && /^invoice\.docm? > /.test(f.part ?? '')),
        variant.name,
      );
    }
  });

  it('through SMTP: a header block past the message size limit is held, never relayed as clean', async () => {
    const small = await startGateway(sink.port, [`quarantine.dir=${path.join(dir, 'quarantine')}`, 'limits.maxMessageSize=200KB']);
    try {
      // 150 KB of header lines cost more than 200 KB to the splitter (each short line counts 64 bytes)
      const eml = `From: a@partner.test\r\n${'X-A: 1\r\n'.repeat(20_000)}Content-Type: text/plain\r\n\r\nhi\r\n`;
      const r = await transaction(small.port, MAIL, [RCPT], eml);
      assert.match(text(r.data), /quarantined as/);
      const log = small.events('message').at(-1)!;
      assert.ok((log.symbols as string[]).includes('MIME_UNPARSEABLE'), JSON.stringify(log.symbols));
    } finally {
      await small.close();
    }
  });

  it('through SMTP: genuine mail of the same shapes gets no MIME or Office finding and is relayed unchanged', async () => {
    for (const variant of genuine) {
      const { reply, verdict, symbols } = await send(variant);
      assert.match(reply, /^250 2\.0\.0 Ok: queued as SINK/, variant.name);
      assert.equal(verdict, 'relay', variant.name);
      assert.deepEqual(
        symbols.filter((s) => CONTENT_SYMBOL.test(s)),
        [],
        variant.name,
      );
      assert.ok(sink.messages.at(-1)!.bytes.equals(variant.eml), `${variant.name}: byte-exact`);
    }
  });

  it('through `mailmoat scan`: the same family, the plain documents and the genuine mail give the same verdicts', () => {
    const files = path.join(dir, 'files');
    spawnSync('mkdir', ['-p', files]);
    const all = [
      ...family.map((v) => ({ v, expect: 'macro' })),
      ...plain.map((v) => ({ v, expect: 'macro' })),
      ...genuine.map((v) => ({ v, expect: 'clean' })),
    ];
    all.forEach(({ v }, i) => writeFileSync(path.join(files, `${String(i).padStart(3, '0')}.eml`), v.eml));
    const r = spawnSync(process.execPath, [main, 'scan', '--json', files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 1, r.stderr);
    const results = r.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { path: string; verdict: { action: string; findings: { symbol: string }[] } });
    assert.equal(results.length, all.length);
    const wrong: string[] = [];
    for (const result of results) {
      const { v, expect } = all[Number(path.basename(result.path, '.eml'))];
      const symbols = result.verdict.findings.map((f) => f.symbol);
      const ok =
        expect === 'macro'
          ? result.verdict.action === 'quarantine' && symbols.includes('OFFICE_MACRO')
          : result.verdict.action === 'relay' && !symbols.some((s) => CONTENT_SYMBOL.test(s));
      if (!ok) wrong.push(`${v.name}: ${result.verdict.action} ${symbols.join(',')}`);
    }
    assert.deepEqual(wrong, []);
  });
});
