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
  // alice@internal.test is an internal sender, so her outbound mail is counted (src/rate/)
  const internal = 'network.internalDomains=["internal.test"]';
  const gw = await startGateway(sink.port, [HOLD_RULE, internal, `quarantine.dir=${JSON.stringify(path.join(dir, 'quarantine'))}`, ...gatewayOverrides], {
    state,
  });
  const web = await startTestConsole(dir, [internal, `downstream.port=${sink.port}`, 'downstream.starttls=off', ...consoleOverrides], state);
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

/** A cookie-keeping HTTP client for the console, as a browser without scripts would be (real HTTP). */
export class ConsoleClient {
  private readonly cookies = new Map<string, string>();

  constructor(
    readonly base: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  async request(method: 'GET' | 'POST', path: string, form?: Record<string, string | string[]>): Promise<{ status: number; body: string; headers: Headers }> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form ?? {})) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    const response = await fetch(this.base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...this.headers,
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(form ? { body: body.toString() } : {}),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1);
      if (/Expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(pair.slice(0, eq));
      else this.cookies.set(pair.slice(0, eq), value);
    }
    return { status: response.status, body: await response.text(), headers: response.headers };
  }

  get(path: string) {
    return this.request('GET', path);
  }

  /** POSTs a form with the CSRF token of `page` (the HTML of a console page). */
  post(path: string, form: Record<string, string | string[]>, page?: string) {
    return this.request('POST', path, page === undefined ? form : { _csrf: csrfToken(page), ...form });
  }

  async signIn(user: string, password = PASSWORD): Promise<void> {
    const login = await this.get('/login');
    const r = await this.post('/login', { user, password, next: '/' }, login.body);
    if (r.status !== 303 || r.headers.get('location') !== '/') throw new Error(`sign-in as ${user} failed: ${r.status} ${r.body.slice(0, 200)}`);
  }
}

export function csrfToken(page: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!token) throw new Error('no CSRF token on the page');
  return token;
}
