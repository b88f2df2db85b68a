// `mailmoat sender` as a process, against the state a running gateway uses: Redis directly, or the
// gateway's admin socket with the in-memory backend.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RedisClient } from '../../src/state/index.js';
import { text, transaction } from '../helpers/client.js';
import { repoRoot, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { removePrefix, testRedis, uniquePrefix } from '../helpers/rate-redis.js';
import { startSink, type Sink } from '../helpers/sink.js';

const exec = promisify(execFile);
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const plain = 'From: Alice <alice@internal.test>\r\nTo: x@outside.test\r\nSubject: hi\r\n\r\nhello\r\n';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { timeout: 20000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('mailmoat sender (CLI)', function () {
  this.timeout(60000);
  let sink: Sink;
  let redis: RedisClient;
  let prefix: string;
  let gw: RunningGateway | undefined;
  before(async () => {
    sink = await startSink();
    redis = await testRedis();
  });
  after(async () => {
    await sink.close();
    await redis.quit();
  });
  beforeEach(() => (prefix = uniquePrefix()));
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await removePrefix(redis, prefix);
  });

  async function sendFrom(port: number, from: string, rcpts: string[]) {
    return transaction(
      port,
      `MAIL FROM:<${from}>`,
      rcpts.map((r) => `RCPT TO:<${r}>`),
      plain.replace('alice@internal.test', from),
    );
  }

  it('with Redis: top, show, suspend (the gateway defers at MAIL), unsuspend', async () => {
    const url = process.env.MAILMOAT_TEST_REDIS_URL!;
    const own = await testRedis();
    const policy = ['network.internalDomains=[internal.test]', `rate.keyPrefix="${prefix}"`];
    gw = await startGateway(sink.port, policy, { state: { kind: 'redis', redis: own, failMode: 'open' } });
    try {
      await sendFrom(gw.port, 'alice@internal.test', ['a@outside.test', 'b@outside.test', 'c@outside.test']);
      await sendFrom(gw.port, 'bob@internal.test', ['a@outside.test']);
      await sendFrom(gw.port, 'bob@internal.test', ['a@outside.test']);
      const sets = ['--set', `state={backend: redis, url: "${url}"}`, ...policy.flatMap((p) => ['--set', p])];

      const top = await cli(['sender', 'top', '--window', '1h', '--by', 'external-recipients', '--json', ...sets]);
      assert.equal(top.code, 0, top.stderr);
      const rows = JSON.parse(top.stdout) as { subject: string; windows: { window: number; counts: Record<string, number> }[] }[];
      assert.deepEqual(
        rows.map((r) => r.subject),
        ['sender:alice@internal.test', 'sender:bob@internal.test'],
      );
      assert.equal(rows[0].windows.find((w) => w.window === 3_600_000)!.counts.externalRecipients, 3);
      const byMessages = await cli(['sender', 'top', '--by', 'messages', ...sets]);
      assert.match(byMessages.stdout, /^last 1h, by messages\nSENDER\s+MSGS\s+EXT-RCPTS.*\nsender:bob@internal\.test\s+2\s+1 /);

      const show = await cli(['sender', 'show', 'alice@internal.test', ...sets]);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /sender:alice@internal\.test {2}state: -\n/);
      assert.match(show.stdout, / {2}1h\s+1\s+3\s+0/);

      const suspend = await cli(['sender', 'suspend', 'alice@internal.test', '--reason', 'ticket 4711', ...sets]);
      assert.equal(suspend.code, 0, suspend.stderr);
      const held = await sendFrom(gw.port, 'alice@internal.test', ['a@outside.test']);
      assert.match(text(held.mail), /^451 4\.7\.1 <alice@internal\.test> is suspended/);
      const shown = JSON.parse((await cli(['sender', 'show', 'alice@internal.test', '--json', ...sets])).stdout) as {
        suspended: { by: string; detail: string };
      }[];
      assert.deepEqual({ by: shown[0].suspended.by, detail: shown[0].suspended.detail }, { by: 'MANUAL', detail: 'ticket 4711' });

      const lift = await cli(['sender', 'unsuspend', 'alice@internal.test', ...sets]);
      assert.equal(lift.code, 0, lift.stderr);
      assert.match(text((await sendFrom(gw.port, 'alice@internal.test', ['a@outside.test'])).data), /^250 /);
      assert.equal((await cli(['sender', 'unsuspend', 'alice@internal.test', ...sets])).code, 1, 'nothing left to lift');
    } finally {
      own.disconnect();
    }
  });

  it('with the memory backend: through the gateway admin socket; without one, a clear message', async () => {
    const socket = path.join(mkdtempSync(path.join(tmpdir(), 'mailmoat-admin-')), 'admin.sock');
    const policy = ['network.internalDomains=[internal.test]', `rate.admin.socket=${socket}`];
    gw = await startGateway(sink.port, policy);
    await sendFrom(gw.port, 'carol@internal.test', ['a@outside.test', 'b@outside.test']);
    const sets = policy.flatMap((p) => ['--set', p]);
    const top = await cli(['sender', 'top', '--json', ...sets]);
    assert.equal(top.code, 0, top.stderr);
    assert.equal((JSON.parse(top.stdout) as { subject: string }[])[0].subject, 'sender:carol@internal.test');
    assert.equal((await cli(['sender', 'suspend', 'carol@internal.test', ...sets])).code, 0);
    assert.match(text((await sendFrom(gw.port, 'carol@internal.test', ['a@outside.test'])).mail), /^451 4\.7\.1 /);
    assert.equal((await cli(['sender', 'unsuspend', 'carol@internal.test', ...sets])).code, 0);
    assert.match(text((await sendFrom(gw.port, 'carol@internal.test', ['a@outside.test'])).data), /^250 /);

    const none = await cli(['sender', 'top']);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /state\.backend is memory: .*Set rate\.admin\.socket .* or use state\.backend redis/);
    const bad = await cli(['sender', 'top', '--window', '2h', '--set', 'state={backend: redis, url: "redis://127.0.0.1:1"}']);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /cannot reach Redis/);
  });
});
