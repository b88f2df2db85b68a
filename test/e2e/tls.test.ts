// STARTTLS on both legs: offered to clients when the policy names a certificate, and used towards
// the MTA as downstream.starttls says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { connect, text, transaction } from '../helpers/client.js';
import * as messages from '../fixtures/messages.js';
import { repoRoot } from '../helpers/gateway.js';
import { withRelay } from '../helpers/relay.js';

const tlsDir = path.join(repoRoot, 'test', 'fixtures', 'tls');
const keyFile = path.join(tlsDir, 'key.pem');
const certFile = path.join(tlsDir, 'cert.pem');

describe('STARTTLS', function () {
  it('is offered to clients when the policy has a certificate, and mail flows over it', async () => {
    await withRelay({ policy: [`tls={cert: "${certFile}", key: "${keyFile}"}`] }, async ({ gw }) => {
      const client = await connect(gw.port);
      assert.ok(client.extensions.has('STARTTLS'));
      assert.equal((await client.starttls('localhost', false)).code, 220);
      assert.ok(client.secure);
      await client.ehlo('client.test');
      assert.ok(!client.extensions.has('STARTTLS'));
      assert.equal((await client.command('MAIL FROM:<a@internal.test>')).code, 250);
      assert.equal((await client.command('RCPT TO:<b@outside.test>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      assert.equal((await client.sendMessage(Readable.from([messages.simpleMessage()]), 10000)).code, 250);
      await client.quit();
    });
  });

  it('is not offered without a certificate', async () => {
    await withRelay({}, async ({ gw }) => {
      const client = await connect(gw.port);
      assert.ok(!client.extensions.has('STARTTLS'));
      await client.quit();
    });
  });

  it('downstream.starttls: the relay leg uses TLS when the MTA offers it', async () => {
    await withRelay(
      { sink: { tls: { key: readFileSync(keyFile), cert: readFileSync(certFile) } }, policy: ['downstream.starttls=required'] },
      async ({ gw, sink }) => {
        const message = messages.dotLines();
        const r = await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<b@outside.test>'], message);
        assert.equal(r.data?.code, 250, text(r.data));
        assert.equal(sink.messages[0].secure, true);
        assert.ok(sink.messages[0].bytes.equals(message));
      },
    );
  });

  it('downstream.starttls=required and an MTA without STARTTLS: 451 4.4.1, never plaintext', async () => {
    await withRelay({ policy: ['downstream.starttls=required'] }, async ({ gw, sink }) => {
      const r = await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<b@outside.test>'], messages.simpleMessage());
      assert.match(text(r.mail), /^451 4\.4\.1 /);
      assert.equal(sink.messages.length, 0);
    });
  });

  it('downstream.tlsVerify refuses a certificate it cannot verify', async () => {
    await withRelay(
      { sink: { tls: { key: readFileSync(keyFile), cert: readFileSync(certFile) } }, policy: ['downstream.starttls=required', 'downstream.tlsVerify=true'] },
      async ({ gw, sink }) => {
        const r = await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<b@outside.test>'], messages.simpleMessage());
        assert.match(text(r.mail), /^451 4\.4\.1 /);
        assert.equal(sink.messages.length, 0);
      },
    );
  });
});
