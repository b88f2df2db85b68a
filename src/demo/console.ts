// The demo's web console: where `mailmoat demo` starts the admin console on the demo's quarantine and
// state, with a demo login, once the console is part of the build. Until then it starts nothing and
// says so: the demo prints no URL that does not answer.
import type { Policy } from '../policy/schema.js';
import type { StateBackend } from '../state/index.js';

export interface DemoConsole {
  url: string;
  login: { user: string; password: string };
  close(): Promise<void>;
}

export interface DemoConsoleSetup {
  /** the demo gateway's policy: its quarantine.dir, state and console sections */
  policy: Policy;
  state: StateBackend;
  /** the demo's temporary directory, removed when the demo ends (a users file can live here) */
  dir: string;
}

/** Why there is no console, when there is none: printed in the demo's summary. */
export const CONSOLE_NOT_BUILT = 'the web console is not in this build yet';

/** The console on a free loopback port with a fresh demo user, or undefined while the console is not built. */
export async function startDemoConsole(_setup: DemoConsoleSetup): Promise<DemoConsole | undefined> {
  return undefined;
}
