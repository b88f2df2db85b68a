// A real console for the tests: a gateway in front of a real downstream (the sink) holds messages in
// a temp quarantine, and the console (the product's Fastify app) serves that directory on a free
// loopback port, sharing the gateway's in-memory state as `mailmoat serve` does. Local accounts
// `admin` and `auditor` exist with the password PASSWORD.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildConsole } from '../../src/console/server.js';
import { sharedState } from '../../src/console/state.js';
import { UserFile } from '../../src/console/users.js';
import { loadPolicy } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/schema.js';
import { QuarantineStore } from '../../src/quarantine/store.js';
import type { StateBackend } from '../../src/state/index.js';
import { text, transaction } from './client.js';
import { defaultPolicyFile, startGateway, type RunningGateway } from './gateway.js';
import { capturedLogger } from './logs.js';
import { startSink, type Sink } from './sink.js';

export const PASSWORD = 'correct horse battery staple';
export const HOLD_RULE = 'rules.headers=[{symbol: SUBJECT_HOLD, header: Subject, match: "^hold", score: 4, action: quarantine}]';
export const MAIL = 'MAIL FROM:<alice@internal.test>';
export const RCPTS = ['RCPT TO:<bob@outside.test>', 'RCPT TO:<carol@outside.test>'];

export interface TestConsole {
  url: string;
  app: FastifyInstance;
  policy: Policy;
  store: QuarantineStore;
  dir: string;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A console over `dir` with the test accounts; `overrides` are `--set`-style policy options. */
export async function startTestConsole(dir: string, overrides: string[] = [], state: StateBackend = { kind: 'memory' }): Promise<TestConsole> {
  const { policy } = loadPolicy(defaultPolicyFile, [
    `quarantine.dir=${JSON.stringify(path.join(dir, 'quarantine'))}`,
    `console.users=${JSON.stringify(path.join(dir, 'users.json'))}`,
    `console.secretFile=${JSON.stringify(path.join(dir, 'secret'))}`,
    ...overrides,
  ]);
  const users = new UserFile(policy.console.users);
  if (!users.get('admin')) await users.set('admin', 'admin', PASSWORD);
  if (!users.get('auditor')) await users.set('auditor', 'auditor', PASSWORD);
  const { log, logs } = capturedLogger();
  const app = await buildConsole({ policy: () => policy, state: sharedState(state, policy), log });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, app, policy, store: new QuarantineStore(policy.quarantine.dir), dir, logs, close: () => app.close() };
}

export interface ConsoleRig {
  sink: Sink;
  gw: RunningGateway;
  console: TestConsole;
  state: StateBackend;
  /** sends a message through the gateway; returns its quarantine id (fails the test if it was not held) */
  hold(message: Buffer, rcpts?: string[]): Promise<string>;
  close(): Promise<void>;
}

/** Sink, gateway and console over one temp quarantine and one in-memory state. */
export async function startConsoleRig(consoleOverrides: string[] = [], gatewayOverrides: string[] = []): Promise<ConsoleRig> {
  const sink = await startSink();
  const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-console-'));
  const state: StateBackend = { kind: 'memory' };
  const gw = await startGateway(sink.port, [HOLD_RULE, `quarantine.dir=${JSON.stringify(path.join(dir, 'quarantine'))}`, ...gatewayOverrides], { state });
  const web = await startTestConsole(dir, [`downstream.port=${sink.port}`, 'downstream.starttls=off', ...consoleOverrides], state);
  return {
    sink,
    gw,
    console: web,
    state,
    async hold(message, rcpts = RCPTS) {
      const r = await transaction(gw.port, MAIL, rcpts, message);
      const id = /^250 2\.0\.0 Ok: quarantined as ([0-9A-Z]{26})$/.exec(text(r.data))?.[1];
      if (!id) throw new Error(`not held: ${text(r.data)}`);
      return id;
    },
    async close() {
      await web.close();
      await gw.close();
      await sink.close();
    },
  };
}
