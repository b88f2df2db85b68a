// The gateway as the MX in front of a real Postfix with its defaults (allow_percent_hack,
// swap_bangpath, resolve_dequoted_address, SMTPUTF8), which trusts the gateway (mynetworks) and has
// the internal domains in mydestination. Local mail goes to one recording next hop, everything else
// to another: "the outside". As a control, each form sent straight to Postfix lands where Postfix's
// reading sends it, many of them outside; through the gateway, from an outside client, none does.
// Needs Postfix (Debian package postfix) and root; otherwise skipped.
import assert from 'node:assert/strict';
import { connect, sendData, text } from '../helpers/client.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { postfixUnavailable, startPostfix, type PrivatePostfix } from '../helpers/private-postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { DOMAINS, POSTMASTER_FORMS, relayForms, type RelayForm } from '../fixtures/relay-forms.js';
import * as messages from '../fixtures/messages.js';

describe('interop: address forms against Postfix with its defaults', function () {
  let postfix: PrivatePostfix | undefined;
  let local: Sink;
  let outside: Sink;
  let gw: RunningGateway;
  const forms = relayForms();

  before(async function () {
    this.timeout(60000);
    const missing = postfixUnavailable();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    // no DSN offered: Postfix would add ORCPT with the original (UTF-8) address, which smtp-server refuses
    local = await startSink({ dsn: false });
    outside = await startSink({ dsn: false });
    postfix = await startPostfix({
      nextHopPort: outside.port, // relayhost: every domain that is not local
      main: [
        'smtputf8_enable = yes',
        // after 10 refused RCPTs Postfix answers each further one a second late: not what is tested here
        'smtpd_error_sleep_time = 0s',
        `mydestination = ${DOMAINS.internal}, ${DOMAINS.lettered}`,
        'local_recipient_maps =',
        `local_transport = smtp:[127.0.0.1]:${local.port}`,
      ],
    });
    // every form on one connection: more refused commands than limits.maxJunkCommands allows
    gw = await startGateway(postfix.port, [
      'network.internalNetworks=[10.0.0.0/8]',
      `network.internalDomains=[${DOMAINS.internal}, ${DOMAINS.lettered}]`,
      'limits.maxJunkCommands=null',
    ]);
  });

  after(async () => {
    postfix?.stop();
    await gw?.close();
    await local?.close();
    await outside?.close();
  });

  /** One transaction to `port`; once Postfix is done with the message, where each recipient went. */
  async function deliver(port: number, subject: string, paths: string[]) {
    const client = await connect(port);
    assert.equal((await client.command('MAIL FROM:<> SMTPUTF8')).code, 250);
    const replies = [];
    for (const path of paths) replies.push(await client.command(`RCPT TO:${path}`));
    const data = await sendData(client, messages.simpleMessage(subject));
    await client.quit();
    const queued = /queued as (\w+)/.exec(text(data));
    assert.ok(queued, text(data));
    await postfix!.waitLog(new RegExp(`${queued[1]}: removed`), 30000);
    const received = (sink: Sink) => sink.messages.filter((m) => m.bytes.includes(`Subject: ${subject}\r\n`)).flatMap((m) => m.rcptLines);
    return { replies, local: received(local), outside: received(outside) };
  }

  /** The RCPT lines that carry this form's user name, whatever Postfix rewrote the address to. */
  const linesOf = (lines: string[], form: RelayForm) => lines.filter((l) => new RegExp(`(?<![0-9A-Za-z])${form.user}(?![0-9])`).test(l));

  it('control: sent straight to Postfix, each form lands where Postfix reads it, most of them outside', async function () {
    this.timeout(60000);
    const { replies, local: localLines, outside: outsideLines } = await deliver(postfix!.port, 'straight', [...forms.map((f) => f.path), ...POSTMASTER_FORMS]);
    forms.forEach((form, i) => {
      const landed =
        replies[i].code !== 250 ? 'refused' : linesOf(outsideLines, form).length ? 'outside' : linesOf(localLines, form).length ? 'local' : 'nowhere';
      assert.equal(landed, form.postfix, `${form.family}: ${form.path} (${text(replies[i])})`);
    });
    assert.ok(forms.filter((f) => f.postfix === 'outside').length > 70);
    assert.ok(outsideLines.includes('RCPT TO:<u0@evil.example>'), 'the percent hack relays to the outside domain');
    // a domainless postmaster: Postfix appends $myorigin, a domain it relays
    assert.ok(outsideLines.some((l) => l.startsWith('RCPT TO:<postmaster@mx.test.local>')));
  });

  it('through the gateway from an outside client: every form refused, nothing reaches the outside, postmaster is delivered locally', async function () {
    this.timeout(60000);
    const plain = `<bob@${DOMAINS.internal}>`;
    const {
      replies,
      local: localLines,
      outside: outsideLines,
    } = await deliver(gw.port, 'through the gateway', [...forms.map((f) => f.path), plain, ...POSTMASTER_FORMS]);
    assert.deepEqual(outsideLines, [], 'nothing reaches the outside');
    forms.forEach((form, i) => assert.ok(replies[i].code >= 500, `${form.path}: ${text(replies[i])}`));
    assert.deepEqual(
      replies.slice(forms.length).map((r) => r.code),
      [250, ...POSTMASTER_FORMS.map(() => 250)],
    );
    assert.deepEqual(localLines.sort(), [`RCPT TO:<bob@${DOMAINS.internal}>`, `RCPT TO:<postmaster@${DOMAINS.internal}>`]);
  });
});
