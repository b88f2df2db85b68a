// Runs Mailmoat's milter in the test process: the default policy plus `--set`-style overrides, on a
// free loopback port (or a UNIX socket), logging into an array the test can read.
import path from 'node:path';
import { MilterServer } from '../../src/milter/server.js';
import type { EnvelopeHooks } from '../../src/milter/session.js';
import { loadPolicy, type LoadedPolicy } from '../../src/policy/load.js';
import { defaultPolicyFile, repoRoot } from './gateway.js';
import type { StateBackend } from '../../src/state/index.js';
import { capturedLogger } from './logs.js';

export interface RunningMilter {
  port: number;
  address: string;
  server: MilterServer;
  loaded: LoadedPolicy;
  logs: Record<string, unknown>[];
  events(event: string): Record<string, unknown>[];
  /** waits until a log line with this event (and optional predicate) exists */
  waitEvent(event: string, count?: number, timeout?: number): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function startMilter(
  overrides: string[] = [],
  opts: { listen?: string; hooks?: EnvelopeHooks; state?: StateBackend } = {},
): Promise<RunningMilter> {
  const loaded = loadPolicy(defaultPolicyFile, [
    'smtp.enabled=false',
    'milter.enabled=true',
    `spool.dir=${path.join(repoRoot, 'var', 'test-spool')}`,
    // the protocol tests count replies per stage; rates (a MAIL-time reply) are tested on their own
    'rate.enabled=false',
    ...overrides,
  ]);
  const { log, logs } = capturedLogger();
  const server = new MilterServer(loaded, log, { hooks: opts.hooks, ...(opts.state ? { services: { state: opts.state, log } } : {}) });
  const address = await server.listen(opts.listen ?? 'inet:127.0.0.1:0');
  const events = (event: string) => logs.filter((l) => l.event === event);
  return {
    port: server.port ?? 0,
    address,
    server,
    loaded,
    logs,
    events,
    async waitEvent(event, count = 1, timeout = 10000) {
      const deadline = Date.now() + timeout;
      while (events(event).length < count) {
        if (Date.now() > deadline) throw new Error(`no ${count}× ${event} log line within ${timeout} ms: ${JSON.stringify(logs.slice(-5))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return events(event);
    },
    close: () => server.drain(),
  };
}
