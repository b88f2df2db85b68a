// The later waves through SMTP and through `mailmoat scan`: a macro document inside each container
// (gzip, tar.gz, tar, 7z, RAR 4, RAR 5, ISO 9660, UDF) is quarantined with its path, the same
// container holding a clean document is relayed byte for byte (a disk image is held for being a
// disk image unless the policy allows them), and shortcuts, programs and smuggling pages are held.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { repoRoot, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { buildDocx, buildVbaCfb, buildZip } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';
import { build7z, buildTar, buildUdfImage, gzipMember, hasGenisoimage, type FileSpec } from '../fixtures/containers/archives.js';
import { buildRar4, buildRar5 } from '../fixtures/containers/rar.js';
import { buildIso } from '../fixtures/containers/iso.js';
import { buildLnk, buildPe, buildSmugglingHtml, ORDINARY_HTML } from '../fixtures/containers/dangerous.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';

interface Container {
  name: string;
  build: (files: FileSpec[]) => Buffer | Promise<Buffer>;
  diskImage?: boolean;
  needs?: () => string | null;
}

const containers: Container[] = [
  { name: 'invoice.docm.gz', build: (f) => gzipMember(f[0].data, { name: f[0].name }) },
  { name: 'invoice.tar.gz', build: async (f) => gzipMember(await buildTar(f)) },
  { name: 'invoice.tar', build: (f) => buildTar(f) },
  { name: 'invoice.7z', build: (f) => build7z(f) },
  { name: 'invoice-v4.rar', build: (f) => buildRar4(f) },
  { name: 'invoice-v5.rar', build: (f) => buildRar5(f) },
  { name: 'invoice.iso', build: (f) => buildIso(f), diskImage: true },
  { name: 'invoice.img', build: (f) => buildUdfImage(f), diskImage: true, needs: () => (hasGenisoimage() ? null : 'genisoimage') },
];

describe('containers of the later waves through SMTP', function () {
  this.timeout(120_000);
  let sink: Sink;
  let dir: string;
  let gw: RunningGateway;
  let docm: Buffer;
  let docx: Buffer;
  before(async () => {
    sink = await startSink();
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-containers-'));
    gw = await startGateway(sink.port, [`quarantine.dir=${dir}`]);
    docm = await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() });
    docx = await buildDocx();
  });
  after(async () => {
    await gw.close();
    await sink.close();
  });

  async function send(message: Buffer, port = gw.port): Promise<string> {
    return text((await transaction(port, MAIL, [RCPT], message)).data);
  }

  function findings(reply: string): { symbol: string; part?: string; detail?: string }[] {
    const id = /quarantined as ([0-9A-Z]{26})$/.exec(reply)?.[1];
    assert.ok(id, reply);
    return (JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8')) as { findings: { symbol: string; part?: string }[] }).findings;
  }

  for (const c of containers) {
    it(`${c.name}: a macro document inside is quarantined, a clean one is relayed${c.diskImage ? ' once disk images are allowed' : ''}`, async function () {
      const missing = c.needs?.();
      if (missing) return this.skip(); // the Debian package named by needs() is not installed
      const bad = await c.build([{ name: 'invoice.docm', data: docm }]);
      const macro = findings(await send(await emailWith([{ filename: c.name, content: bad }]))).find((f) => f.symbol === 'OFFICE_MACRO');
      assert.ok(macro, `${c.name}: no OFFICE_MACRO`);
      assert.ok(macro.part!.startsWith(`${c.name} > `), macro.part);
      assert.match(macro.part!, /invoice\.docm > word\/vbaProject\.bin/i);

      const clean = await emailWith([{ filename: c.name, content: await c.build([{ name: 'report.docx', data: docx }]) }]);
      if (c.diskImage) {
        assert.deepEqual(
          findings(await send(clean)).map((f) => f.symbol),
          ['FILE_DISK_IMAGE'],
        );
        const lenient = await startGateway(sink.port, [`quarantine.dir=${dir}`, 'verdict.symbols={FILE_DISK_IMAGE: {score: 0, action: relay}}']);
        try {
          assert.match(await send(clean, lenient.port), /^250 2\.0\.0 Ok: queued as SINK/);
        } finally {
          await lenient.close();
        }
      } else {
        assert.match(await send(clean), /^250 2\.0\.0 Ok: queued as SINK/);
      }
      assert.ok(sink.messages.at(-1)!.bytes.equals(clean), 'relayed byte for byte');
    });
  }

  it('an encrypted 7z with the password in the body is opened and quarantined for its macro', async () => {
    const z = await build7z([{ name: 'invoice.docm', data: docm }], { password: 'Jan-2025', encryptNames: true });
    const fs = findings(await send(await emailWith([{ filename: 'invoice.7z', content: z }], { text: 'Archive password: Jan-2025\n' })));
    assert.ok(fs.some((f) => f.symbol === 'OFFICE_MACRO'));
  });

  it('a shortcut in a zip, a program named .pdf, and an HTML smuggling page are quarantined; an HTML invoice with a link is relayed', async () => {
    const lnkZip = await buildZip([{ name: 'Invoice.pdf.lnk', data: buildLnk() }]);
    assert.ok(findings(await send(await emailWith([{ filename: 'invoice.zip', content: lnkZip }]))).some((f) => f.symbol === 'FILE_SHORTCUT'));
    const exe = findings(await send(await emailWith([{ filename: 'scan.pdf', content: buildPe(), contentType: 'application/pdf' }])));
    assert.ok(exe.some((f) => f.symbol === 'FILE_EXECUTABLE' && /named scan\.pdf/.test(f.detail ?? '')));
    const html = buildSmugglingHtml(lnkZip, 'invoice.zip', 'blob-anchor');
    const smuggled = findings(await send(await emailWith([{ filename: 'invoice.html', content: html, contentType: 'text/html' }])));
    assert.ok(smuggled.some((f) => f.symbol === 'HTML_SMUGGLING'));
    assert.ok(smuggled.some((f) => f.symbol === 'FILE_SHORTCUT' && f.part === 'invoice.html > invoice.zip > Invoice.pdf.lnk'));
    const ordinary = await emailWith([{ filename: 'invoice.html', content: ORDINARY_HTML.link, contentType: 'text/html' }]);
    assert.match(await send(ordinary), /^250 2\.0\.0 Ok: queued as SINK/);
  });

  it('the policy can change each file type: FILE_SHORTCUT rejected with 550', async () => {
    const strict = await startGateway(sink.port, [`quarantine.dir=${dir}`, 'verdict.symbols={FILE_SHORTCUT: {action: reject}}']);
    try {
      const lnkZip = await buildZip([{ name: 'Invoice.lnk', data: buildLnk() }]);
      assert.match(await send(await emailWith([{ filename: 'invoice.zip', content: lnkZip }]), strict.port), /^550 5\.7\.1 /);
    } finally {
      await strict.close();
    }
  });

  it('mailmoat scan finds the same in files on disk', async () => {
    const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    const files = {
      'invoice.7z': await build7z([{ name: 'invoice.docm', data: docm }]),
      'invoice.rar': buildRar5([{ name: 'Invoice.lnk', data: buildLnk() }]),
      'report.tar.gz': gzipMember(await buildTar([{ name: 'report.docx', data: docx }])),
    };
    for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(dir, name), bytes);
    const r = spawnSync(process.execPath, [main, 'scan', ...Object.keys(files).map((n) => path.join(dir, n))], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /invoice\.7z: QUARANTINE .*OFFICE_MACRO/);
    assert.match(lines[1], /invoice\.rar: QUARANTINE .*FILE_SHORTCUT/);
    assert.match(lines[2], /report\.tar\.gz: OK$/);
  });
});
