// The shared-state backend: Redis (every gateway node sees the same counters) or the embedded
// in-memory default for a single node. Analyzers that keep state take a client from here.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observe/log.js';
import type { Policy } from '../policy/schema.js';

/** A standalone/Sentinel client, or a Cluster client (same command API; keys hash-tagged per sender). */
export type RedisClient = Redis | Cluster;
export type StateBackend = { kind: 'memory' } | { kind: 'redis'; redis: RedisClient; failMode: 'open' | 'closed' };

/** The policy's `state` section; the Redis options added later are optional for callers. */
export type StateConfig =
  | { backend: 'memory' }
  | (Pick<Extract<Policy['state'], { backend: 'redis' }>, 'backend' | 'url' | 'failMode'> &
      Partial<Pick<Extract<Policy['state'], { backend: 'redis' }>, 'commandTimeout' | 'sentinels' | 'sentinelName' | 'cluster'>>);

/**
 * The one Redis client factory: standalone (url), Sentinel (sentinels + sentinelName) or Cluster
 * (cluster nodes); the URL gives password, db and TLS. Commands are bounded (commandTimeout) and
 * fail at once while disconnected (no offline queue), so a dead Redis is the fail mode, never a
 * hang; the client reconnects on its own.
 */
export function createRedisClient(config: Extract<StateConfig, { backend: 'redis' }>): RedisClient {
  const url = new URL(config.url);
  const base: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: config.commandTimeout ?? 500,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  };
  const auth = {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  const hostPort = (s: string) => ({ host: s.slice(0, s.lastIndexOf(':')), port: Number(s.slice(s.lastIndexOf(':') + 1)) });
  if (config.cluster?.length) {
    return new Cluster(config.cluster.map(hostPort), {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
      redisOptions: { ...auth, connectTimeout: base.connectTimeout, commandTimeout: base.commandTimeout, maxRetriesPerRequest: 1 },
    });
  }
  if (config.sentinels?.length) {
    const db = Number(url.pathname.slice(1) || 0);
    return new Redis({ ...base, ...auth, db, sentinels: config.sentinels.map(hostPort), name: config.sentinelName ?? 'mymaster' });
  }
  return new Redis(config.url, base);
}

export async function openState(config: StateConfig, log: Logger): Promise<StateBackend> {
  if (config.backend === 'memory') {
    log.info({ event: 'state_ready', backend: 'memory' }, 'state: embedded in-memory backend (single node)');
    return { kind: 'memory' };
  }
  const redis = createRedisClient(config);
  redis.on('error', (err: Error) => log.warn({ event: 'state_error', backend: 'redis', err: err.message }, 'redis error'));
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

/**
 * A Redis client for an admin command (`mailmoat sender`, `quarantine release --trust-sender`),
 * connected: commands get at least 5 s (a person waits, not a client), and a Redis that cannot be
 * reached is an Error naming it (password hidden), not a hang or a stack trace.
 */
export async function connectForCommand(config: Extract<StateConfig, { backend: 'redis' }>): Promise<RedisClient> {
  const redis = createRedisClient({ ...config, commandTimeout: Math.max(config.commandTimeout ?? 0, 5000) });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`cannot reach Redis (${redactUrl(config.url)}): ${(err as Error).message}`, { cause: err });
  }
  return redis;
}

export async function closeState(state: StateBackend): Promise<void> {
  if (state.kind === 'redis') await state.redis.quit().catch(() => state.redis.disconnect());
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
