// Runs a real gateway in the test process: the default policy plus `--set`-style overrides, on a
// free loopback port, logging into an array the test can read.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../../src/gateway/server.js';
import type { Services } from '../../src/pipeline.js';
import { loadPolicy, type LoadedPolicy } from '../../src/policy/load.js';
import { capturedLogger } from './logs.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const defaultPolicyFile = path.join(repoRoot, 'policies', 'default.yaml');

export interface RunningGateway {
  port: number;
  gateway: Gateway;
  loaded: LoadedPolicy;
  logs: Record<string, unknown>[];
  /** the JSON log lines with this `event` */
  events(event: string): Record<string, unknown>[];
  close(): Promise<void>;
}

/** `services` (optional): the state backend to share, e.g. one Redis client between two gateways. */
export async function startGateway(downstreamPort: number, overrides: string[] = [], services?: Omit<Services, 'log'>): Promise<RunningGateway> {
  const loaded = loadPolicy(defaultPolicyFile, [
    'listen.port=1',
    `downstream.port=${downstreamPort}`,
    'downstream.starttls=off',
    `spool.dir=${path.join(repoRoot, 'var', 'test-spool')}`,
    ...overrides,
  ]);
  const { log, logs } = capturedLogger();
  const gateway = new Gateway(loaded, log, services ? { ...services, log } : undefined);
  const address = await gateway.listen('127.0.0.1', 0);
  return {
    port: address.port,
    gateway,
    loaded,
    logs,
    events: (event) => logs.filter((l) => l.event === event),
    close: () => gateway.drain(),
  };
}
