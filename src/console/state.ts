// Where the console reads the sender counters and the overview counters, through the same code as
// `mailmoat sender` (src/rate/admin.ts):
// - inside `mailmoat serve`: the gateway's own state backend (Redis, or its in-memory store);
// - alone (`mailmoat console`) with Redis: a Redis client of its own;
// - alone with the in-memory backend: the running gateway's admin socket (rate.admin.socket), or,
//   without one, a page that says why the counters cannot be shown.
import type { Logger } from '../observe/log.js';
import type { Policy, RateMetric } from '../policy/schema.js';
import { adminRequest, show, suspend, top, unsuspend, type SubjectReport } from '../rate/admin.js';
import { rateStoreFor } from '../rate/limiter.js';
import { closeState, createRedisClient, type StateBackend } from '../state/index.js';
import { rollupFor, type Rollup, type RollupView } from '../state/rollup.js';
import { BY } from '../rate/admin.js';

export interface SenderAccess {
  top(policy: Policy, window: number, by: RateMetric, limit: number): Promise<SubjectReport[]>;
  show(policy: Policy, addr: string): Promise<SubjectReport[]>;
  suspend(policy: Policy, addr: string, reason: string): Promise<string[]>;
  /** the subjects that had a suspension or hold */
  unsuspend(policy: Policy, addr: string): Promise<string[]>;
}

export interface ConsoleState {
  senders: SenderAccess | { unavailable: string };
  rollup: Pick<Rollup, 'read'> | { unavailable: string };
  /**
   * Where recipients' requests and own releases are counted (quarantine.requests): the gateway's
   * backend, Redis, or (a console alone over the in-memory backend) the console's own memory, since
   * recipients act only through the console. Absent: the console's own memory.
   */
  backend?: StateBackend;
  /**
   * `backend` is the gateways' own (inside `mailmoat serve`, or Redis): trusting a released sender
   * teaches the thread memory the gateways read. Not so for a console alone over the in-memory
   * backend, whose memory is its own.
   */
  sharesThreadMemory?: boolean;
  close(): Promise<void>;
}

/** The state of the process the console runs in (`serve`): the very store the gateway counts in. */
export function sharedState(state: StateBackend, policy: Policy): ConsoleState {
  const store = rateStoreFor(state);
  return {
    senders: {
      top: (p, window, by, limit) => top(store, p, window, by, limit),
      show: (p, addr) => show(store, p, addr),
      suspend: (p, addr, reason) => suspend(store, p, addr, reason),
      unsuspend: (p, addr) => unsuspend(store, p, addr),
    },
    rollup: rollupFor(state, policy.console.keyPrefix),
    backend: state,
    sharesThreadMemory: true,
    close: () => Promise.resolve(),
  };
}

const METRIC_NAMES = Object.fromEntries(Object.entries(BY).map(([name, metric]) => [metric, name])) as Record<RateMetric, string>;

/** The console on its own: Redis, or the memory gateway's admin socket. */
export async function standaloneState(policy: Policy, log: Logger): Promise<ConsoleState> {
  const config = policy.state;
  if (config.backend === 'redis') {
    const redis = createRedisClient(config);
    redis.on('error', (err: Error) => log.warn({ event: 'state_error', backend: 'redis', err: err.message }, 'redis error'));
    await redis.connect().catch((err: Error) => log.error({ event: 'state_unavailable', err: err.message }, 'console: redis unreachable (will retry)'));
    const backend: StateBackend = { kind: 'redis', redis, failMode: config.failMode };
    return { ...sharedState(backend, policy), close: () => closeState(backend) };
  }
  const socket = policy.rate.admin.socket;
  if (!socket) {
    const why =
      'state.backend is memory: the counters live inside the running gateway. Enable the console in the gateway (console.listen with mailmoat serve), set rate.admin.socket, or use state.backend redis.';
    return { senders: { unavailable: why }, rollup: { unavailable: why }, backend: { kind: 'memory' }, close: () => Promise.resolve() };
  }
  return {
    senders: {
      top: (_p, window, by, limit) => adminRequest(socket, 'GET', `/top?window=${window}&by=${METRIC_NAMES[by]}&limit=${limit}`) as Promise<SubjectReport[]>,
      show: (_p, addr) => adminRequest(socket, 'GET', `/show?addr=${encodeURIComponent(addr)}`) as Promise<SubjectReport[]>,
      suspend: (_p, addr, reason) =>
        adminRequest(socket, 'POST', `/suspend?addr=${encodeURIComponent(addr)}&reason=${encodeURIComponent(reason)}`) as Promise<string[]>,
      unsuspend: (_p, addr) => adminRequest(socket, 'POST', `/unsuspend?addr=${encodeURIComponent(addr)}`) as Promise<string[]>,
    },
    rollup: { read: (_now, hours, days) => adminRequest(socket, 'GET', `/rollup?hours=${hours}&days=${days}`) as Promise<RollupView> },
    backend: { kind: 'memory' },
    close: () => Promise.resolve(),
  };
}
