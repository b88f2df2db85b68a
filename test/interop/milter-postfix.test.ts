// Interop with a real Postfix: a private instance on loopback with smtpd_milters pointing at
// Mailmoat's milter, relaying to a recording next hop. What an admin gets with the milter set-up:
// clean mail delivered with the verdict header, a macro document quarantined by us (and releasable
// from the CLI), a rejection in the SMTP session, and a milter that keeps serving after a client
// vanishes mid-message or a peer sends junk. Needs Postfix (Debian package postfix) and root.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, sendData, text, transaction } from '../helpers/client.js';
import { defaultPolicyFile, repoRoot } from '../helpers/gateway.js';
import { postfixUnavailable, startPostfix, type PrivatePostfix } from '../helpers/private-postfix.js';
import { startMilter, type RunningMilter } from '../helpers/milter-server.js';
import { startSink, type Sink } from '../helpers/sink.js';
import type { StateBackend } from '../../src/state/index.js';
import { buildDocx, buildVbaCfb } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';

const MAIL = 'MAIL FROM:<alice@internal.test>';
const RCPT = 'RCPT TO:<bob@outside.test>';

function simple(subject: string): string {
  return `From: Alice <alice@internal.test>\r\nTo: bob@outside.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@internal.test>\r\n\r\nHello Bob,\r\n..a line with a leading dot\r\nbye\r\n`;
}

async function until<T>(what: string, check: () => T | undefined, timeout = 15000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Registers the suite's before/after hooks: a recording sink, Mailmoat's milter with the given policy
 * overrides (the function gets a fresh quarantine directory), and a private Postfix using it.
 */
function postfixWithMilter(overrides: (quarantineDir: string) => string[], opts: { state?: StateBackend; main?: string[] } = {}) {
  const env = {} as { sink: Sink; milter: RunningMilter; postfix: PrivatePostfix; quarantineDir: string };
  before(async function () {
    this.timeout(60000);
    const missing = postfixUnavailable();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    env.quarantineDir = mkdtempSync(path.join(tmpdir(), 'mailmoat-milter-pf-q-'));
    env.sink = await startSink();
    env.milter = await startMilter(overrides(env.quarantineDir), { state: opts.state });
    env.postfix = await startPostfix({ milter: `inet:127.0.0.1:${env.milter.port}`, nextHopPort: env.sink.port, main: opts.main });
  });
  after(async () => {
    env.postfix?.stop();
    await env.milter?.close();
    await env.sink?.close();
  });
  return env;
}

describe('interop: Postfix with Mailmoat as its milter (smtpd_milters)', function () {
  const env = postfixWithMilter((dir) => [
    'relay.verdictHeader=true',
    `quarantine.dir=${dir}`,
    'rules.headers=[{symbol: SUBJECT_BLOCKED, header: Subject, match: "^\\\\[blocked\\\\]", action: reject}]',
  ]);

  it('a clean message is delivered with the added X-Mailmoat-Verdict header and otherwise unchanged', async () => {
    const r = await transaction(env.postfix.port, MAIL, [RCPT], simple('clean one'));
    assert.match(text(r.data), /^250 2\.0\.0 Ok: queued as /);
    const delivered = await until('delivery', () => env.sink.messages.find((m) => m.bytes.includes('Subject: clean one')));
    const bytes = delivered.bytes.toString('latin1');
    const header = /^X-Mailmoat-Verdict: relay; score=0; symbols=none;\s+id=([0-9A-Z]{26})\r\n/m.exec(bytes);
    assert.ok(header, bytes);
    // the body as the client sent it (the recording sink keeps the dot-stuffed wire form)
    assert.ok(bytes.endsWith('\r\n\r\nHello Bob,\r\n..a line with a leading dot\r\nbye\r\n'), bytes);
    // ADDHEADER appends: the header ends the header block, folded with CRLF + TAB by Postfix
    assert.match(bytes, /\r\nX-Mailmoat-Verdict: relay; score=0; symbols=none;\r\n\tid=[0-9A-Z]{26}\r\n\r\nHello Bob/);
    const line = (await env.milter.waitEvent('message')).find((l) => l.id === header[1])!;
    assert.equal(line.verdict, 'relay');
    assert.equal(line.front, 'milter');
    assert.equal(line.from, 'alice@internal.test');
    assert.deepEqual(line.rcpt, ['bob@outside.test']);
    assert.equal(line.helo, 'client.test');
    assert.match(String(line.queueId), /^[0-9A-F]+$/);
    await env.postfix.waitLog(new RegExp(`${String(line.queueId)}: .*status=sent`));
  });

  it('a macro document is quarantined by us (durable copy, DISCARD): the client hears 250, nothing is delivered, the CLI can release it', async function () {
    this.timeout(60000);
    const message = await emailWith([{ filename: 'invoice.docm', content: await buildDocx({ macroEnabled: true, vbaProject: buildVbaCfb() }) }]);
    const before = env.sink.messages.length;
    const r = await transaction(env.postfix.port, MAIL, [RCPT], message);
    assert.match(text(r.data), /^250 /);
    const line = await until('the quarantine log line', () => env.milter.events('message').find((l) => l.verdict === 'quarantine'));
    assert.equal(line.quarantined, true);
    assert.ok((line.symbols as string[]).includes('OFFICE_MACRO'));
    const eml = path.join(env.quarantineDir, `${String(line.id)}.eml`);
    assert.ok(existsSync(eml));
    await env.postfix.waitLog(/milter-discard: END-OF-MESSAGE/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(env.sink.messages.length, before);

    // released from the CLI: the message as received (Postfix's own Received: is not shown to milters)
    const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    const released = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          cli,
          'quarantine',
          'release',
          String(line.id),
          '--policy',
          defaultPolicyFile,
          '--set',
          `quarantine.dir=${env.quarantineDir}`,
          '--set',
          `downstream.port=${env.sink.port}`,
          '--set',
          'downstream.starttls=off',
          '--operator',
          'test',
        ],
        { timeout: 30000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    assert.equal(released.code, 0, released.out);
    const delivered = await until('the released message', () => (env.sink.messages.length > before ? env.sink.messages.at(-1) : undefined));
    assert.ok(delivered.bytes.includes(Buffer.from('invoice.docm')));
  });

  it("a rejection reaches the client in the SMTP session (Postfix's milter-reject), nothing is delivered", async () => {
    const before = env.sink.messages.length;
    const r = await transaction(env.postfix.port, MAIL, [RCPT], simple('[blocked] invoice'));
    assert.match(text(r.data), /^550 5\.7\.1 Message rejected by policy \[[0-9A-Z]{26}\]$/);
    await env.postfix.waitLog(/milter-reject: END-OF-MESSAGE from .*: 5\.7\.1 Message rejected by policy/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(env.sink.messages.length, before);
  });

  it('a client that vanishes mid-DATA, and a peer sending junk, leave the milter serving the next message', async () => {
    const client = await connect(env.postfix.port);
    assert.equal((await client.command(MAIL)).code, 250);
    assert.equal((await client.command(RCPT)).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    const socket = (client as unknown as { socket: net.Socket }).socket;
    socket.write('Subject: half a message\r\n\r\nthe body stops here');
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await new Promise((resolve) => {
      const junk = net.connect({ host: '127.0.0.1', port: env.milter.port }, () => junk.write('\x00\x00\x00\x05Zjunk' + 'x'.repeat(100)));
      junk.on('close', resolve);
      junk.on('error', resolve);
    });
    assert.ok(env.milter.events('milter_protocol_error').length >= 1);
    const r = await transaction(env.postfix.port, MAIL, [RCPT], simple('after the faults'));
    assert.match(text(r.data), /^250 /);
    await until('delivery after the faults', () => env.sink.messages.find((m) => m.bytes.includes('Subject: after the faults')));
  });
});

describe('interop: Postfix milter with outbound sender rates', function () {
  const env = postfixWithMilter(() => [
    'rate.enabled=true',
    'network.internalDomains=[internal.test]',
    'rate.thresholds=[{metric: messages, window: 1h, limit: 1, action: defer}]',
  ]);

  it('a rate-limited internal sender is deferred: at end of data past the limit, then already at MAIL', async () => {
    const first = await transaction(env.postfix.port, MAIL, [RCPT], simple('first'));
    assert.equal(first.data?.code, 250, text(first.data));
    const second = await transaction(env.postfix.port, MAIL, [RCPT], simple('second'));
    assert.match(text(second.data), /^451 4\.7\.1 /);
    const third = await transaction(env.postfix.port, MAIL, [RCPT], simple('third'));
    // Postfix answers MAIL itself and relays the milter's MAIL verdict at RCPT time
    assert.match([third.mail, ...third.rcpts].map(text).join(' | '), /451 4\.7\.1 <alice@internal\.test> sent too much mail/);
    await until('the delivery of the first message', () => (env.sink.messages.length === 1 ? true : undefined));
  });
});

describe('interop: Postfix milter and hijacked-thread replies', function () {
  // every client is Postfix on loopback: example.com senders are outbound, the others inbound
  const env = postfixWithMilter((dir) => ['network.internalDomains=["example.com"]', 'spoof.authentication=false', `quarantine.dir=${dir}`], {
    state: { kind: 'memory' },
    main: ['smtputf8_enable = yes'],
  });

  it('remembers the outbound thread, quarantines the hijacked reply (nothing delivered), delivers the genuine one', async () => {
    const { buildMessage, genuine, hijack, originalMessage, PEOPLE } = await import('../fixtures/mail/threads.js');
    const us = PEOPLE.en.us;
    const them = PEOPLE.en.them;
    const send = (mailFrom: string, rcpts: string[], bytes: Buffer) =>
      transaction(
        env.postfix.port,
        `MAIL FROM:<${mailFrom}>`,
        rcpts.map((r) => `RCPT TO:<${r}>`),
        bytes,
      );
    assert.equal((await send(us.address, [them.address], buildMessage(originalMessage('en')))).data?.code, 250);
    await until('the outbound message delivered', () => (env.sink.messages.length === 1 ? true : undefined));

    const bad = hijack('stolen-references', 'en', 'text');
    bad.spec.body = 'Please see the attached invoice and confirm today.';
    const hijacked = await send(bad.mailFrom, bad.rcptTo, buildMessage(bad.spec));
    assert.equal(hijacked.data?.code, 250, text(hijacked.data)); // Postfix accepts; the milter discarded it into our quarantine
    const lines = await env.milter.waitEvent('message', 2);
    const line = lines.find((l) => l.from === bad.mailFrom);
    assert.ok((line?.symbols as string[]).includes('SPOOF_THREAD_IMPERSONATION'), JSON.stringify(lines));
    assert.equal(line!.verdict, 'quarantine');
    assert.equal(env.sink.messages.length, 1, 'the hijacked reply was not delivered');

    const good = genuine('participant-reply', 'en', 'text');
    assert.equal((await send(good.mailFrom, good.rcptTo, buildMessage(good.spec))).data?.code, 250);
    await until('the genuine reply delivered', () => (env.sink.messages.length === 2 ? true : undefined));
  });
});

describe('interop: Postfix milter past milter.maxConnections, with milter_default_action = accept', function () {
  const env = postfixWithMilter(() => ['milter.maxConnections=1'], { main: ['milter_default_action = accept'] });

  it('the session over the limit is tempfailed by Postfix, not let through unfiltered; the admitted one is served', async () => {
    // Postfix's start-up probe (a connect and close) had a milter connection of its own: gone first
    await until("the start-up probe's milter session to end", () => (env.milter.server.activeSessions === 0 ? true : undefined));
    const holder = await connect(env.postfix.port); // its smtpd holds the one milter connection
    await until('the first milter connection', () => (env.milter.server.activeSessions === 1 ? true : undefined));
    const over = await connect(env.postfix.port);
    const mail = await over.command(MAIL);
    const rcpt = mail.code === 250 ? await over.command(RCPT) : undefined;
    assert.ok(mail.code >= 400 || (rcpt && rcpt.code >= 400), `refused: ${text(mail)} / ${text(rcpt)}`);
    assert.match(text(rcpt ?? mail), /^4\d\d 4\.3\.2 Mail filter busy, try again later/);
    await over.quit();
    assert.equal(env.milter.events('milter_refused').length, 1);
    await env.postfix.waitLog(/milter-reject: (CONNECT|HELO|MAIL|RCPT) from .*4\.3\.2 Mail filter busy/);

    assert.equal((await holder.command(MAIL)).code, 250);
    assert.equal((await holder.command(RCPT)).code, 250);
    assert.match(text(await sendData(holder, simple('admitted session'))), /^250 /);
    await holder.quit();
    await until('delivery of the admitted session', () => env.sink.messages.find((m) => m.bytes.includes('Subject: admitted session')));
    assert.equal(env.sink.messages.length, 1, 'nothing of the refused session was delivered');
  });
});
