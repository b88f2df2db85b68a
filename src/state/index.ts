// The shared-state backend: Redis (every gateway node sees the same counters) or the embedded
// in-memory default for a single node. Analyzers that keep state take a client from here.
import { Redis } from 'ioredis';
import type { Logger } from '../observe/log.js';
import type { Policy } from '../policy/schema.js';

export type StateBackend = { kind: 'memory' } | { kind: 'redis'; redis: Redis; failMode: 'open' | 'closed' };

export async function openState(config: Policy['state'], log: Logger): Promise<StateBackend> {
  if (config.backend === 'memory') {
    log.info({ event: 'state_ready', backend: 'memory' }, 'state: embedded in-memory backend (single node)');
    return { kind: 'memory' };
  }
  const redis = new Redis(config.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  redis.on('error', (err) => log.warn({ event: 'state_error', backend: 'redis', err: err.message }, 'redis error'));
  try {
    await redis.connect();
    await redis.ping();
    log.info({ event: 'state_ready', backend: 'redis', url: redactUrl(config.url) }, 'state: redis reachable');
  } catch (err) {
    log.error(
      { event: 'state_unavailable', backend: 'redis', url: redactUrl(config.url), failMode: config.failMode, err: (err as Error).message },
      `state: redis unreachable; fail mode ${config.failMode}`,
    );
  }
  return { kind: 'redis', redis, failMode: config.failMode };
}

export async function closeState(state: StateBackend): Promise<void> {
  if (state.kind === 'redis') await state.redis.quit().catch(() => state.redis.disconnect());
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
