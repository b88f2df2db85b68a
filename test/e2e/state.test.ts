// The state backend: real Redis when configured; an unreachable one is an explicit, logged state.
import assert from 'node:assert/strict';
import { parsePolicy } from '../../src/policy/load.js';
import { closeState, openState } from '../../src/state/index.js';
import { freePort } from '../helpers/global.js';
import { capturedLogger } from '../helpers/logs.js';

/** The state section as the policy schema completes it (defaults filled in). */
function stateConfig(yaml: string) {
  return parsePolicy(`state: ${yaml}`, 'test.yaml').policy.state;
}

function capture() {
  const { log, logs } = capturedLogger('info');
  return { logs, log };
}

describe('state backend', function () {
  it('connects to the configured Redis and says so', async () => {
    const { logs, log } = capture();
    const state = await openState(stateConfig(`{backend: redis, url: "${process.env.MAILMOAT_TEST_REDIS_URL}", failMode: open}`), log);
    try {
      assert.equal(state.kind, 'redis');
      if (state.kind === 'redis') assert.equal(await state.redis.ping(), 'PONG');
      assert.equal(logs.find((l) => l.event === 'state_ready')?.backend, 'redis');
    } finally {
      await closeState(state);
    }
  });

  it('an unreachable Redis is logged with the fail mode, without a crash or a hang', async () => {
    const { logs, log } = capture();
    const state = await openState(stateConfig(`{backend: redis, url: "redis://127.0.0.1:${await freePort()}", failMode: closed}`), log);
    try {
      const down = logs.find((l) => l.event === 'state_unavailable')!;
      assert.equal(down.failMode, 'closed');
    } finally {
      await closeState(state);
    }
  });

  it('the embedded default needs nothing', async () => {
    const { logs, log } = capture();
    assert.deepEqual(await openState(stateConfig('{backend: memory}'), log), { kind: 'memory' });
    assert.equal(logs[0].backend, 'memory');
  });
});
