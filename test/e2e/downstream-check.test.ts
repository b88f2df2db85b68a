// `mailmoat serve` looks at its downstream MTA at start-up, as a new user's first run needs: with
// nothing listening it says so in the log and on stderr, keeps running and defers mail with
// 451 4.4.1; with an MTA there it says nothing on stderr.
import assert from 'node:assert/strict';
import { defaultPolicyFile } from '../helpers/gateway.js';
import { text, transaction } from '../helpers/client.js';
import { freePort } from '../helpers/global.js';
import { serve, type Served } from '../helpers/served.js';
import { startSink } from '../helpers/sink.js';
import * as messages from '../fixtures/messages.js';

async function stderrWith(gw: Served, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 100 && !pattern.test(gw.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  return gw.stderr();
}

describe('serve: the downstream at start-up', function () {
  this.timeout(30000);

  it('nothing listening: downstream_unreachable in the log, stderr says mail is deferred; the gateway still runs and answers 451 4.4.1', async () => {
    const nothing = await freePort();
    const gw = await serve(defaultPolicyFile, nothing);
    try {
      const warning = await gw.waitFor((l) => l.event === 'downstream_unreachable');
      assert.equal(warning.downstream, `127.0.0.1:${nothing}`);
      assert.match(String(warning.reason), /ECONNREFUSED/);
      assert.match(String(warning.consequence), /451 4\.4\.1/);
      assert.equal(warning.level, 40, 'a warning');
      const stderr = await stderrWith(gw, /deferred/); // stderr and the log are two pipes: either may come first
      assert.match(stderr, new RegExp(`downstream MTA at 127\\.0\\.0\\.1:${nothing} is unreachable`));
      assert.match(stderr, /gateway is running, but every message will be deferred with 451 4\.4\.1 until it answers/);
      assert.match(stderr, /--downstream HOST:PORT/);

      const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], messages.simpleMessage());
      assert.match(text(r.mail), /^451 4\.4\.1 Downstream unavailable/);
      assert.equal(gw.child.exitCode, null, 'still running');
    } finally {
      gw.child.kill('SIGKILL');
    }
  });

  it('an MTA listening: downstream_reachable with its greeting, nothing on stderr, mail relayed', async () => {
    const sink = await startSink();
    const gw = await serve(defaultPolicyFile, sink.port, ['--set', 'downstream.starttls=off']);
    try {
      const ok = await gw.waitFor((l) => l.event === 'downstream_reachable');
      assert.match(String(ok.greeting), /^220 /);
      const r = await transaction(gw.port, 'MAIL FROM:<alice@internal.test>', ['RCPT TO:<bob@outside.test>'], messages.simpleMessage());
      assert.equal(r.data?.code, 250, text(r.data));
      assert.equal(sink.messages.length, 1);
      assert.equal(gw.stderr(), '');
      assert.ok(!gw.logs.some((l) => l.event === 'downstream_unreachable'));
    } finally {
      gw.child.kill('SIGKILL');
      await sink.close();
    }
  });
});
