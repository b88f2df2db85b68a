// The `mailmoat` command as an admin runs it: a real process, real signals, real files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { text, transaction } from '../helpers/client.js';
import { repoRoot } from '../helpers/gateway.js';
import { freePort } from '../helpers/global.js';
import { startScripted } from '../helpers/scripted.js';
import { startSink } from '../helpers/sink.js';
import { mainScript, serve, tempPolicy } from '../helpers/served.js';
import * as messages from '../fixtures/messages.js';

const main = mainScript;

describe('mailmoat policy check', function () {
  it('exits 0 and prints the version for a valid file', () => {
    const r = spawnSync(process.execPath, [main, 'policy', 'check', path.join(repoRoot, 'policies', 'default.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /default\.yaml: ok \(version [0-9a-f]{12}\)/);
  });

  it('exits 1 with file:line:column, key and expectation for each problem', () => {
    const file = tempPolicy('limits:\n  maxClients: 0\n  bogus: 1\n');
    const r = spawnSync(process.execPath, [main, 'policy', 'check', file], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(`${file}:2:3: limits.maxClients: Too small: expected number to be >=1`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:3:3: limits.bogus: unknown option`), r.stderr);
    assert.ok(r.stderr.includes('2 problems'));
  });

  it('names a file that cannot be read', () => {
    const r = spawnSync(process.execPath, [main, 'policy', 'check', '/nonexistent/policy.yaml'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^\/nonexistent\/policy\.yaml: cannot read: ENOENT/);
  });
});

describe('mailmoat serve', function () {
  it('refuses to start on an invalid policy, saying why', () => {
    const file = tempPolicy('downstream: { port: 99999 }\n');
    const r = spawnSync(process.execPath, [main, 'serve', '--policy', file], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /policy\.yaml:1:\d+: downstream\.(host|port): /);
  });

  it('reloads on SIGHUP; an invalid edit keeps the last good policy and the gateway keeps serving', async () => {
    const sink = await startSink();
    const file = tempPolicy('limits: { maxRecipients: 1 }\n');
    const gw = await serve(file, sink.port);
    try {
      const first = await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>', 'RCPT TO:<y@o.test>'], messages.simpleMessage());
      assert.equal(first.rcpts[1].code, 452);

      writeFileSync(file, 'limits: { maxRecipients: 5 }\n');
      gw.child.kill('SIGHUP');
      const loaded = await gw.waitFor((l) => l.event === 'policy_loaded' && l.previous !== undefined);
      assert.match(String(loaded.version), /^[0-9a-f]{12}$/);
      const second = await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>', 'RCPT TO:<y@o.test>'], messages.simpleMessage());
      assert.equal(second.rcpts[1].code, 250);

      writeFileSync(file, 'limits: { maxRecipients: "lots" }\n');
      gw.child.kill('SIGHUP');
      const rejected = await gw.waitFor((l) => l.event === 'policy_rejected');
      assert.equal(rejected.activeVersion, loaded.version);
      const third = await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>', 'RCPT TO:<y@o.test>'], messages.simpleMessage());
      assert.equal(third.rcpts[1].code, 250);
      assert.equal(third.data?.code, 250);
    } finally {
      gw.child.kill('SIGKILL');
      await sink.close();
    }
  });

  it('metrics.listen serves Prometheus counters on /metrics and a health check on /healthz', async () => {
    const sink = await startSink();
    const metricsPort = await freePort();
    const gw = await serve(tempPolicy(''), sink.port, ['--set', `metrics.listen={host: 127.0.0.1, port: ${metricsPort}}`]);
    try {
      await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>'], messages.simpleMessage());
      await transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>'], messages.simpleMessage());
      const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      assert.equal(health.status, 200);
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(body, /^mailmoat_messages_total\{front="smtp",action="relay"\} 2$/m);
      assert.match(body, /^mailmoat_process_resident_memory_bytes \d+/m);
    } finally {
      gw.child.kill('SIGKILL');
      await sink.close();
    }
  });

  it('SIGTERM drains: the message in flight gets its 250, new clients are refused, exit 0', async () => {
    const slow = await startScripted({ delays: { DOT: 800 } });
    const gw = await serve(tempPolicy(''), slow.port);
    try {
      const inFlight = transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>'], messages.simpleMessage());
      for (let i = 0; i < 300 && !slow.commands.includes('DATA'); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(slow.commands.includes('DATA'), 'the message is in flight');
      gw.child.kill('SIGTERM');
      const r = await inFlight;
      assert.equal(text(r.data), '250 2.0.0 Ok');
      assert.equal(await gw.exited, 0);
      assert.ok(gw.logs.some((l) => l.event === 'draining'));
      await assert.rejects(transaction(gw.port, 'MAIL FROM:<a@internal.test>', ['RCPT TO:<x@o.test>'], messages.simpleMessage()), /ECONNREFUSED/);
    } finally {
      gw.child.kill('SIGKILL');
      await slow.close();
    }
  });
});
