// `serve` sends the digests on quarantine.digest.schedule: every so long (`24h`), or daily at a
// local time (`08:30`). When the last run was is read from the store's digest record, so a restart
// does not send again early and several nodes sharing the store send once: the first one due takes
// the digest lock, the others find the run done (it is checked again under the lock).
import type { Logger } from '../observe/log.js';
import type { Policy } from '../policy/schema.js';
import { TokenKeyError } from '../console/tokens.js';
import { readDigestRecord, sendDigests } from './digest.js';
import { QuarantineError, QuarantineStore } from './store.js';

export type DigestSchedule = NonNullable<Policy['quarantine']['digest']['schedule']>;

/** Looked at least this often, so a policy change or another node's run is noticed. */
const CHECK_MS = 60_000;

/**
 * When the next run is due (ms). Every: that long after the last run (now, when never run). Daily:
 * the first such time after the last run (a run missed while down is made up at once), or, when
 * never run, the next such time from now.
 */
export function nextDigestAt(schedule: DigestSchedule, lastRun: number | undefined, now: number): number {
  if ('every' in schedule) return lastRun === undefined ? now : lastRun + schedule.every;
  const [hours, minutes] = schedule.daily.split(':').map(Number);
  const after = lastRun ?? now - 1;
  const at = new Date(after);
  at.setHours(hours, minutes, 0, 0);
  if (at.getTime() <= after) at.setDate(at.getDate() + 1);
  return at.getTime();
}

/** Starts the schedule; the policy is read at each check (hot reload). `stop` ends it (a run in progress finishes). */
export function startDigestSchedule(currentPolicy: () => Policy, log: Logger, now: () => number = Date.now): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let lastError: string | undefined;
  const check = async (): Promise<void> => {
    const policy = currentPolicy();
    const schedule = policy.quarantine.digest.schedule;
    if (!schedule) return arm(CHECK_MS);
    const store = new QuarantineStore(policy.quarantine.dir);
    try {
      const { lastRun } = await readDigestRecord(store);
      const due = nextDigestAt(schedule, lastRun, now());
      if (due > now()) return arm(Math.min(CHECK_MS, due - now()));
      const run = await sendDigests(store, policy, {
        log,
        now,
        operator: 'digest schedule',
        due: (last) => nextDigestAt(schedule, last, now()) <= now(),
      });
      lastError = undefined;
      if (!run.skipped) {
        const failed = run.outcomes.filter((o) => o.status === 'failed').length;
        log[failed ? 'warn' : 'info'](
          { event: 'digest_run', recipients: run.outcomes.length, failed, problems: run.problems.length },
          `digests: ${run.outcomes.length - failed} sent, ${failed} failed`,
        );
      }
    } catch (err) {
      const locked = err instanceof QuarantineError && err.kind === 'locked';
      // said once at error level (a missing key stays missing until the policy changes), then quietly
      const level = locked || (err as Error).message === lastError ? 'debug' : 'error';
      if (!locked) lastError = (err as Error).message;
      log[level]({ event: 'digest_run_failed', err: (err as Error).message, config: err instanceof TokenKeyError || undefined }, 'digest run not done');
      return arm(CHECK_MS);
    }
    return arm(Math.min(CHECK_MS, Math.max(1000, nextDigestAt(schedule, now(), now()) - now())));
  };
  const arm = (ms: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = check().finally(() => (running = undefined));
    }, ms);
    timer.unref();
  };
  arm(0);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
