// The thread corpus of `npm run eval:threads` (test/fixtures/threads/): the generator is
// deterministic, its messages are well-formed (mailparser reads each, threads link, labels are
// complete, the DNS zone authenticates genuine mail and fails foreign infrastructure), and a few of
// its messages run end to end through a real gateway with a real local DNS server. No assertion
// here is about detection rates: those are the benchmark's figures.
import assert from 'node:assert/strict';
import { authenticate } from 'mailauth';
import { simpleParser } from 'mailparser';
import { generateCorpus, GENUINE_SHAPES, HIJACK_SHAPES, type Corpus, type GeneratedMessage } from '../fixtures/threads/corpus.js';
import { policyResolver } from '../../src/inspect/spoof/dns.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { testPolicy } from '../fixtures/mail/run.js';
import { replayOrganisation } from '../helpers/thread-replay.js';

const SMALL = { seed: 7, only: ['sakura'], threads: 14, hijacks: 30, listThreads: 3 };

/**
 * The bytes with what may differ between two runs taken out: the encrypted zips and OOXML parts
 * (zip.js draws AES salts at random and stamps the current time) and the DKIM signatures over them.
 */
function stable(m: GeneratedMessage): string {
  return m.raw
    .toString('latin1')
    .replace(/(Content-Disposition: attachment;[\s\S]*?\r\n\r\n)[A-Za-z0-9+/=\r\n]+/g, '$1<archive>\r\n')
    .replace(/\b(bh|b)=[A-Za-z0-9+/=\s]+;?/g, '$1=<sig>;');
}

const header = (m: GeneratedMessage, name: string) =>
  new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r\\n[ \\t].*)*)`, 'im').exec(m.raw.toString('latin1').split('\r\n\r\n')[0])?.[1]?.replace(/\r\n[ \t]+/g, ' ');

describe('thread corpus generator', function () {
  this.timeout(120_000);
  let corpus: Corpus;

  before(async () => {
    corpus = await generateCorpus(SMALL);
  });

  it('gives the same messages for the same seed and other ones for another seed', async () => {
    const again = await generateCorpus(SMALL);
    assert.equal(again.messages.length, corpus.messages.length);
    for (let i = 0; i < corpus.messages.length; i++) {
      const a = corpus.messages[i];
      const b = again.messages[i];
      assert.deepEqual({ ...b, raw: undefined }, { ...a, raw: undefined }, `message ${i}`);
      assert.equal(stable(b), stable(a), `message ${i} (${a.label.shape})`);
    }
    assert.deepEqual(again.zone, corpus.zone);
    const other = await generateCorpus({ ...SMALL, seed: 8 });
    assert.notDeepEqual(
      other.messages.map((m) => m.messageId),
      corpus.messages.map((m) => m.messageId),
    );
  });

  it('labels every message completely, outside the headers the gateway reads', () => {
    const shapes = new Set<string>();
    for (const m of corpus.messages) {
      const l = m.label;
      assert.ok(l.lang === 'ja' || l.lang === 'en', JSON.stringify(l));
      if (l.kind === 'hijack') {
        assert.ok((HIJACK_SHAPES as readonly string[]).includes(l.shape), l.shape);
        assert.ok(l.variant && l.payload && l.quote, JSON.stringify(l));
        assert.equal(m.direction, 'inbound');
      } else {
        assert.equal(l.kind, 'genuine');
        assert.ok((GENUINE_SHAPES as readonly string[]).includes(l.shape), l.shape);
      }
      shapes.add(`${l.kind}/${l.shape}`);
      assert.doesNotMatch(m.raw.toString('latin1').split('\r\n\r\n')[0], /hijack|genuine|stolen-references|lookalike/i);
    }
    for (const s of HIJACK_SHAPES) assert.ok(shapes.has(`hijack/${s}`), `no ${s} hijack`);
    for (const s of ['reply', 'outbound', 'ppap-zip', 'ppap-password', 'list-kept', 'list-rewritten', 'esp-notice', 'forward-in'])
      assert.ok(shapes.has(`genuine/${s}`), `no genuine ${s}`);
    // a PPAP pair is two messages, the zip first
    const pairs = new Map<string, GeneratedMessage[]>();
    for (const m of corpus.messages) if (m.label.pair) pairs.set(m.label.pair, [...(pairs.get(m.label.pair) ?? []), m]);
    assert.ok(pairs.size > 0);
    for (const [pair, ms] of pairs) {
      assert.deepEqual(
        ms.map((m) => m.label.role),
        ['zip', 'password'],
        pair,
      );
      assert.ok(ms[0].seq < ms[1].seq);
    }
  });

  it('writes messages mailparser reads, with the thread headers, dates and names as generated', async () => {
    const ids = new Map<string, GeneratedMessage>();
    let jis = 0;
    let q = 0;
    for (const m of corpus.messages) {
      const parsed = await simpleParser(m.raw);
      assert.equal(parsed.messageId, `<${m.messageId}>`, `${m.org}#${m.seq}`);
      // written, then delivered: at once, or minutes later through a mailing list
      const written = parsed.date?.getTime() ?? NaN;
      assert.ok(
        written <= m.date.getTime() && m.date.getTime() - written < 600_000,
        `${m.org}#${m.seq} date ${parsed.date?.toISOString()} vs ${m.date.toISOString()}`,
      );
      const from = parsed.from?.value[0];
      assert.ok(from?.address, `${m.org}#${m.seq} has a From address`);
      assert.ok((parsed.text ?? '').trim().length > 0, `${m.org}#${m.seq} has text`);
      if (m.inReplyTo) {
        assert.equal(parsed.inReplyTo, `<${m.inReplyTo}>`);
        const refs = ([] as string[]).concat(parsed.references ?? []);
        assert.equal(refs.at(-1), `<${m.inReplyTo}>`, 'References end with the parent');
      }
      // a conversation's reply answers an earlier message of the same organisation's stream
      if (['reply', 'reply-other-name-form', 'new-colleague'].includes(m.label.shape) || m.label.shape === 'stolen-references') {
        const parent = ids.get(m.inReplyTo!);
        assert.ok(parent, `${m.org}#${m.seq} ${m.label.shape} replies to ${m.inReplyTo}, not an earlier message`);
        assert.ok(parent.date <= m.date);
      }
      if (m.label.kind === 'hijack' && m.label.shape === 'address-in-name') {
        const victimAddress = /[\w.-]+@[\w.-]+/.exec(from.name ?? '')?.[0];
        assert.ok(victimAddress && victimAddress !== from.address, `${m.org}#${m.seq}: the decoded display name carries an address: ${from.name}`);
      }
      const rawFrom = header(m, 'From') ?? '';
      if (/=\?ISO-2022-JP\?B\?/i.test(rawFrom)) jis++;
      if (/=\?UTF-8\?Q\?/i.test(rawFrom)) q++;
      ids.set(m.messageId, m);
    }
    assert.ok(jis > 0 && q > 0, `display names in ISO-2022-JP (${jis}) and Q (${q}) words`);
  });

  it("publishes DNS that authenticates a partner's reply and fails the same address sent from a botnet", async () => {
    const dns = await startDnsServer(corpus.zone);
    try {
      const resolver = policyResolver(testPolicy({ dns: { servers: [dns.address] } }).dns);
      const auth = (m: GeneratedMessage) =>
        authenticate(m.raw, { sender: m.envelope.mailFrom, ip: m.client.address, helo: m.client.helo, mta: 'mx.test', resolver, disableBimi: true });
      const partners = corpus.world.partners.get('sakura')!;
      const aligned = corpus.messages.find(
        (m) =>
          m.label.shape === 'reply' &&
          partners.some((p) => p.dkim.some((k) => k.domain === p.domain) && p.dmarc && m.envelope.mailFrom.endsWith(`@${p.domain}`)),
      )!;
      const good = await auth(aligned);
      assert.equal(good.spf && good.spf.status.result, 'pass', JSON.stringify(good.spf));
      assert.equal(good.dmarc && good.dmarc.status.result, 'pass');
      assert.ok(good.dkim?.results.some((r) => r.status.result === 'pass'));
      const forged = corpus.messages.find((m) => m.label.kind === 'hijack' && m.label.variant === 'other-network');
      if (forged) {
        const bad = await auth(forged);
        assert.notEqual(bad.spf && bad.spf.status.result, 'pass', `${forged.envelope.mailFrom} from ${forged.client.address}`);
        assert.ok(!bad.dkim?.results.some((r) => r.status.result === 'pass'));
      }
      assert.ok(dns.questions.some((q) => q.type === 'TXT' && q.name.startsWith('_dmarc.')));
    } finally {
      await dns.close();
    }
  });
});

describe('thread replay through a gateway', function () {
  this.timeout(120_000);
  let corpus: Corpus;
  let dns: TestDnsServer;
  let handful: GeneratedMessage[];
  let hijack: GeneratedMessage;

  before(async () => {
    corpus = await generateCorpus(SMALL);
    dns = await startDnsServer(corpus.zone);
    // a stolen-references hijack under a participant's name (any written form), and the thread it answers (no PPAP in it)
    hijack = corpus.messages.find(
      (m) =>
        m.label.kind === 'hijack' &&
        m.label.shape === 'stolen-references' &&
        ['participant-name', 'participant-other-form', 'colleague-name'].includes(m.label.variant) &&
        corpus.messages.some((x) => x.thread === m.thread && x.direction === 'outbound' && m.references.includes(x.messageId)) &&
        !corpus.messages.some((x) => x.thread === m.thread && x.label.pair),
    )!;
    assert.ok(hijack, "the corpus has a hijack under a participant's name of a thread with an outbound message");
    handful = [...corpus.messages.filter((m) => m.thread === hijack.thread && m.label.kind === 'genuine' && m.seq < hijack.seq), hijack];
  });

  after(async () => {
    await dns?.close();
  });

  for (const mode of ['local DNS', 'DNS unreachable'] as const) {
    it(`relays the genuine thread and flags its hijack (${mode})`, async () => {
      const asked = dns.questions.length;
      const results = await replayOrganisation(corpus.orgs[0], handful, { dns: mode === 'local DNS' ? [dns.address] : 'unreachable' });
      assert.equal(results.length, handful.length);
      for (const r of results.slice(0, -1)) {
        assert.match(r.reply, /^250 /, `${r.message.label.shape}: ${r.reply}`);
        assert.equal(r.verdict, 'relay', `${r.message.label.shape}: ${JSON.stringify(r.findings)}`);
      }
      const inboundGenuine = results.filter((r) => r.message.direction === 'inbound' && r.message.label.kind === 'genuine' && r.message.inReplyTo);
      for (const r of inboundGenuine)
        assert.ok(
          r.findings.some((f) => f.symbol === 'SPOOF_THREAD_PARTICIPANT'),
          `the partner's reply is a participant's: ${JSON.stringify(r.findings.map((f) => f.symbol))}`,
        );
      const last = results.at(-1)!;
      assert.ok(['tag', 'quarantine'].includes(last.verdict), `hijack ${last.verdict}: ${JSON.stringify(last.findings)}`);
      const symbols = last.findings.map((f) => f.symbol);
      assert.ok(symbols.includes('SPOOF_THREAD_OUTSIDER') || symbols.includes('SPOOF_THREAD_IMPERSONATION'), symbols.join(' '));
      if (mode === 'DNS unreachable') {
        assert.ok(symbols.includes('AUTH_TEMPERROR'), symbols.join(' '));
        assert.equal(dns.questions.length, asked, 'nothing reached the DNS server');
      } else {
        // the gateway asked the local server, and every answer came
        assert.ok(dns.questions.length > asked, 'the gateway queried the local DNS server');
        assert.ok(!results.some((r) => r.findings.some((f) => f.symbol === 'AUTH_TEMPERROR')), 'no DNS failure');
      }
    });
  }
});
