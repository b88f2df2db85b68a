// Redis for the sender-rate tests: a key prefix unique to the run (removed afterwards), a client from
// the one factory, and a private redis-server on a free port that a test may kill and restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { parsePolicy } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/schema.js';
import { createRedisClient, type RedisClient } from '../../src/state/index.js';
import { freePort } from './global.js';

export function uniquePrefix(): string {
  return `mmtest:${process.pid}:${randomBytes(4).toString('hex')}:`;
}

export async function testRedis(url = process.env.MAILMOAT_TEST_REDIS_URL!): Promise<RedisClient> {
  const redis = createRedisClient({ backend: 'redis', url, failMode: 'open', commandTimeout: 2000 });
  redis.on('error', () => undefined);
  await redis.connect();
  return redis;
}

export async function keysWithPrefix(redis: RedisClient, prefix: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys;
}

export async function removePrefix(redis: RedisClient, prefix: string): Promise<void> {
  for (const key of await keysWithPrefix(redis, prefix)) await redis.del(key);
}

/** A policy's rate section from `--set`-style overrides on the defaults. */
export function ratePolicy(overrides: string[]): Policy {
  return parsePolicy('', 'test.yaml', overrides).policy;
}

export interface PrivateRedis {
  port: number;
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A redis-server of our own (no persistence) on a free port; stop() kills it, start() brings it back. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const self: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        if (await answers(port)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`private redis-server on ${port} does not answer`);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
  };
  await self.start();
  return self;
}

async function answers(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
