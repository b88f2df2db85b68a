// Evaluation of the Office engine on ../shared/corpus/office (labels in MANIFEST.tsv): a confusion
// table per label. Not a test (the project must not depend on the corpus): `npm run eval:office`.
// Each file is scanned twice: as a bare file (no passwords known), and as the attachment of a
// message whose text says "Password: 1234", the way Emotet mails carried archive passwords.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanAttachment } from '../../src/inspect/office/index.js';
import { DEFAULT_OFFICE_LIMITS } from '../../src/inspect/office/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const corpus = process.env.MAILMOAT_OFFICE_CORPUS ?? path.resolve(here, '../../../../shared/corpus/office');

const FILE_TYPE_SYMBOL = /^(FILE_|HTML_SMUGGLING|ONENOTE_EMBEDDED_FILE|ARCHIVE_UNSUPPORTED)/;

type Outcome = 'macro' | 'empty-project' | 'unscannable' | 'nothing';

function outcome(symbols: Set<string>): Outcome {
  if (symbols.has('OFFICE_MACRO') || symbols.has('OFFICE_XLM_MACRO')) return 'macro';
  if (symbols.has('OFFICE_VBA_PROJECT_EMPTY')) return 'empty-project';
  if (
    symbols.has('OFFICE_ENCRYPTED_UNSCANNABLE') ||
    symbols.has('ARCHIVE_ENCRYPTED_UNSCANNABLE') ||
    symbols.has('ARCHIVE_LIMIT') ||
    symbols.has('OFFICE_CORRUPT')
  )
    return 'unscannable';
  return 'nothing';
}

async function main(): Promise<void> {
  const manifest = path.join(corpus, 'MANIFEST.tsv');
  if (!existsSync(manifest)) {
    console.log(`office corpus evaluation skipped: no ${manifest}`);
    return;
  }
  const rows = readFileSync(manifest, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'));
  for (const passwords of [[], ['1234']]) {
    const table = new Map<string, Map<Outcome, string[]>>();
    // file-type findings (FILE_*, HTML_SMUGGLING, ...): none belongs on this corpus of documents
    const fileTypes: string[] = [];
    for (const [file, label] of rows) {
      const bytes = readFileSync(path.join(corpus, file));
      const findings = await scanAttachment(bytes, path.basename(file), undefined, passwords, DEFAULT_OFFICE_LIMITS);
      const o = outcome(new Set(findings.map((f) => f.symbol)));
      for (const f of findings) if (FILE_TYPE_SYMBOL.test(f.symbol)) fileTypes.push(`${f.symbol} on ${label} ${file} (${f.part}: ${f.detail})`);
      const byLabel = table.get(label) ?? new Map<Outcome, string[]>();
      byLabel.set(o, [...(byLabel.get(o) ?? []), file]);
      table.set(label, byLabel);
    }
    console.log(`\n${passwords.length ? 'as attachments of a message saying "Password: 1234"' : 'bare files, no password known'}:`);
    console.log('label   files  macro  empty-project  unscannable  nothing');
    for (const [label, byLabel] of table) {
      const n = (o: Outcome) => String(byLabel.get(o)?.length ?? 0).padStart(o.length);
      const total = [...byLabel.values()].reduce((s, l) => s + l.length, 0);
      console.log(`${label.padEnd(7)} ${String(total).padStart(5)}  ${n('macro')}  ${n('empty-project')}  ${n('unscannable')}  ${n('nothing')}`);
    }
    const wrong = [
      ...(table.get('macro')?.get('nothing') ?? []).map((f) => `missed macro: ${f}`),
      ...(table.get('macro')?.get('empty-project') ?? []).map((f) => `macro reported empty: ${f}`),
      ...(table.get('clean')?.get('macro') ?? []).map((f) => `clean flagged as macro: ${f}`),
      ...(table.get('clean')?.get('empty-project') ?? []).map((f) => `clean flagged as empty project: ${f}`),
      ...(table.get('edge')?.get('macro') ?? []).map((f) => `edge flagged as macro: ${f}`),
      ...(table.get('edge')?.get('nothing') ?? []).map((f) => `edge not reported: ${f}`),
      ...(table.get('macro')?.get('unscannable') ?? []).map((f) => `macro file unscannable (quarantined by default): ${f}`),
      ...(table.get('clean')?.get('unscannable') ?? []).map((f) => `clean file unscannable (quarantined by default): ${f}`),
    ];
    for (const line of wrong) console.log('  ' + line);
    console.log(`file-type findings: ${fileTypes.length}`);
    for (const line of fileTypes) console.log('  ' + line);
  }
}

await main();
