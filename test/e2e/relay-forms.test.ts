// Through the gateway to a real downstream: every address form that could route an internal-looking
// recipient elsewhere is refused from an outside client and never reaches the downstream; internal
// clients keep sending them as written; <postmaster> is accepted from anyone.
import assert from 'node:assert/strict';
import { connect, sendData, text } from '../helpers/client.js';
import { withRelay } from '../helpers/relay.js';
import { smtpServerReading } from '../helpers/smtp-server-reading.js';
import { DOMAINS, plainInternalRecipients, POSTMASTER_FORMS, relayForms } from '../fixtures/relay-forms.js';
import * as messages from '../fixtures/messages.js';

const INTERNAL_DOMAINS = `network.internalDomains=[${DOMAINS.internal}, ${DOMAINS.lettered}]`;
// loopback is not internal: the test client is a stranger on the Internet
// every form is sent on one connection: more refused commands than limits.maxJunkCommands allows
const OUTSIDE = ['network.internalNetworks=[10.0.0.0/8]', INTERNAL_DOMAINS, 'limits.maxJunkCommands=null'];
const INSIDE = ['network.internalNetworks=[127.0.0.0/8]', INTERNAL_DOMAINS, 'limits.maxJunkCommands=null'];

/** One transaction: MAIL, every RCPT in order, and DATA when any was accepted. */
async function send(port: number, rcptPaths: string[]) {
  const client = await connect(port);
  try {
    assert.equal((await client.command('MAIL FROM:<> SMTPUTF8')).code, 250);
    const replies = [];
    for (const path of rcptPaths) replies.push(await client.command(`RCPT TO:${path}`));
    const data = replies.some((r) => r.code === 250) ? await sendData(client, messages.simpleMessage('forms')) : undefined;
    return { replies, data };
  } finally {
    await client.quit();
  }
}

describe('relay control: address forms through the gateway', function () {
  const forms = relayForms();
  const plain = plainInternalRecipients();

  it(`an outside client: all ${forms.length} forms refused, only the plain recipients reach the downstream`, async () => {
    await withRelay({ policy: OUTSIDE }, async ({ gw, sink }) => {
      const { replies, data } = await send(gw.port, [...forms.map((f) => f.path), ...plain]);
      forms.forEach((form, i) => {
        const reply = text(replies[i]);
        // what smtp-server reads at all reaches the relay check, and is refused there
        if (smtpServerReading(form.path) !== undefined) assert.match(reply, /^554 5\.7\.1 <.+>: Relay access denied/, `${form.family}: ${form.path}`);
        else assert.match(reply, /^501 /, `${form.family}: ${form.path}`);
      });
      assert.deepEqual(
        replies.slice(forms.length).map((r) => r.code),
        plain.map(() => 250),
      );
      assert.equal(data?.code, 250);
      assert.equal(sink.messages.length, 1);
      assert.deepEqual(
        sink.messages[0].rcptLines,
        plain.map((p) => `RCPT TO:${p}`),
      );
      const denied = gw.events('relay_denied');
      assert.equal(denied.length, replies.filter((r) => r.code === 554).length);
      assert.ok(denied.some((e) => e.form === 'percent hack (%) in the local part'));
    });
  });

  it('an internal client: every form smtp-server accepts is relayed as written', async () => {
    await withRelay({ policy: INSIDE }, async ({ sink, gw }) => {
      const readable = forms.filter((f) => smtpServerReading(f.path) !== undefined);
      assert.ok(readable.length > 60);
      const { replies, data } = await send(
        gw.port,
        readable.map((f) => f.path),
      );
      assert.deepEqual(
        replies.map((r) => r.code),
        readable.map(() => 250),
      );
      assert.equal(data?.code, 250);
      assert.deepEqual(
        sink.messages[0].rcptLines,
        readable.map((f) => `RCPT TO:${f.path}`),
      );
    });
  });
});

describe('relay control: <postmaster> through the gateway', function () {
  it('from an outside client, in any case: relayed as postmaster at the first internal domain, parameters kept', async () => {
    await withRelay({ policy: OUTSIDE }, async ({ gw, sink }) => {
      const client = await connect(gw.port);
      assert.equal((await client.command('MAIL FROM:<someone@outside.example>')).code, 250);
      for (const [i, path] of POSTMASTER_FORMS.entries())
        assert.equal(text(await client.command(`RCPT TO:${path} ORCPT=rfc822;form${i}`)), '250 2.1.5 Accepted');
      assert.equal((await sendData(client, messages.simpleMessage('to the postmaster'))).code, 250);
      await client.quit();
      assert.deepEqual(
        sink.messages[0].rcptLines,
        POSTMASTER_FORMS.map((_, i) => `RCPT TO:<postmaster@${DOMAINS.internal}> ORCPT=rfc822;form${i}`),
      );
      assert.deepEqual(
        gw.events('message')[0].rcpt,
        POSTMASTER_FORMS.map(() => `postmaster@${DOMAINS.internal}`),
      );
    });
  });

  it('to network.postmaster when set; as sent when the policy has neither it nor an internal domain', async () => {
    await withRelay({ policy: [...OUTSIDE, 'network.postmaster=abuse-desk@mail.corp.example'] }, async ({ gw, sink }) => {
      await send(gw.port, ['<postmaster>']);
      assert.deepEqual(sink.messages[0].rcptLines, ['RCPT TO:<abuse-desk@mail.corp.example>']);
    });
    await withRelay({ policy: ['network.internalNetworks=[10.0.0.0/8]'] }, async ({ gw, sink }) => {
      const { replies } = await send(gw.port, ['<PostMaster>', '<bob@corp.example>']);
      assert.deepEqual(
        replies.map((r) => r.code),
        [250, 554],
      );
      assert.deepEqual(sink.messages[0].rcptLines, ['RCPT TO:<PostMaster>']);
    });
  });
});
