// The demo's web console: the admin console on the demo's quarantine and state, on a free loopback
// port, with a fresh demo account (a random password, printed in the summary) in the demo's
// temporary directory, so the user can look at what the demo held and release it in a browser.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startConsole } from '../console/server.js';
import { sharedState } from '../console/state.js';
import { UserFile } from '../console/users.js';
import type { Logger } from '../observe/log.js';
import type { Policy } from '../policy/schema.js';
import type { StateBackend } from '../state/index.js';

export interface DemoConsole {
  url: string;
  login: { user: string; password: string };
  close(): Promise<void>;
}

export interface DemoConsoleSetup {
  /** the demo gateway's policy: its quarantine.dir and state */
  policy: Policy;
  state: StateBackend;
  /** the demo's temporary directory, removed when the demo ends: the accounts file and secret live here */
  dir: string;
  log: Logger;
}

export const DEMO_USER = 'demo';

/** The console on a free loopback port with the demo account (role admin). */
export async function startDemoConsole(setup: DemoConsoleSetup): Promise<DemoConsole> {
  const policy: Policy = {
    ...setup.policy,
    console: {
      ...setup.policy.console,
      listen: { host: '127.0.0.1', port: 0 },
      tls: null,
      users: path.join(setup.dir, 'console', 'users.json'),
      secretFile: path.join(setup.dir, 'console', 'secret'),
    },
  };
  const password = randomBytes(9).toString('base64url');
  await new UserFile(policy.console.users).set(DEMO_USER, 'admin', password);
  const running = await startConsole({ policy: () => policy, state: sharedState(setup.state, policy), log: setup.log });
  return { url: running.url, login: { user: DEMO_USER, password }, close: () => running.close() };
}
