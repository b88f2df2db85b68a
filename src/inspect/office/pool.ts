// Office scans run in worker threads (piscina): decrypting an Agile-encrypted document costs
// ~100,000 SHA-512 rounds per password tried, and a zip bomb is cut off only after its budget: work
// like that must not stall every other SMTP session on the gateway's event loop.
//
// A scan runs in turns (turns.ts, key-cache.ts): the message that has had the least worker time
// goes first, and a turn that has made a key derivation ends at the next one past TURN_MS. Every
// turn spends from the message's budget (message-budget.ts). A turn that overruns the message's
// time by far (a parser bug) has its worker terminated: an ARCHIVE_LIMIT finding, never a hang.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Finding } from '../finding.js';
import { DEFAULT_SCORES } from './c-util.js';
import { MessageBudget } from './message-budget.js';
import { Turns } from './turns.js';
import { OFFICE_SYMBOLS, type OfficeLimits } from './types.js';
import type { ScanOutcome, ScanTask } from './worker.js';
import { joinLeaf } from '../mime/leaf-bytes.js';

/** A turn makes no new key derivation after this long (one derivation is ~100-150 ms). */
const TURN_MS = 150;
/** How far past the message's time a turn may run before its worker is terminated. */
const OVERRUN_MS = 5000;

// at least two workers: one slow scan (a bomb up to its budget) must not hold up every other attachment
const THREADS = Math.max(2, availableParallelism());
let pool: Piscina | undefined;
const turns = new Turns(THREADS);

function workers(): Piscina {
  pool ??= new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    // an idle worker exits, and with it its heap and the garbage of the scans it ran: a burst of large
    // messages leaves no memory held (a cold worker takes ~0.2 s to start)
    minThreads: 0,
    maxThreads: THREADS,
    idleTimeout: 10_000,
  });
  return pool;
}

/**
 * One attachment's scan in the workers, spending `budget` (the message's; a fresh one when the
 * attachment is alone). Each turn's worker gets its own copy of the bytes, transferred, not
 * serialised (pages of their own, leaf-bytes.ts, unmapped when the worker collects them).
 * `signal` (the client went away) stops the scan, queued or running: the promise then rejects
 * with its reason.
 */
export async function scanAttachmentOffThread(
  bytes: Buffer,
  filename: string | undefined,
  contentType: string | undefined,
  /** null: the message's passwords are not known yet (ScanContext.passwordsLater) */
  passwords: string[] | null,
  limits: OfficeLimits,
  options: { path?: string[]; signal?: AbortSignal; budget?: MessageBudget } = {},
): Promise<Finding[]> {
  const budget = options.budget ?? new MessageBudget(limits);
  const part = options.path?.join(' > ') || filename || 'attachment';
  for (;;) {
    if (budget.timeLeftMs <= 0) return [limitFinding(part, `the message's scan time of ${limits.timeoutMs} ms is spent; not scanned`)];
    const outcome = await turn(
      { bytes, filename, contentType, passwords, limits, path: options.path, budget: budget.share(), turnMs: TURN_MS },
      options.signal,
      budget,
    );
    if (!outcome) return [limitFinding(part, `scan stopped after overrunning the message's scan time by ${OVERRUN_MS} ms`)];
    budget.settle(outcome);
    if (!outcome.deferred) return outcome.findings;
  }
}

/** One turn on a worker; undefined when the worker had to be stopped. */
async function turn(task: ScanTask, signal: AbortSignal | undefined, budget: MessageBudget): Promise<ScanOutcome | undefined> {
  await turns.acquire(budget.workedMs, signal);
  const overrun = AbortSignal.timeout(Math.max(0, task.budget.timeLeftMs) + OVERRUN_MS);
  // made once a worker is free: a queued leaf is not held twice
  const copy = joinLeaf([task.bytes as Buffer]);
  try {
    const run = workers().run(
      { ...task, bytes: copy },
      { signal: signal ? AbortSignal.any([overrun, signal]) : overrun, transferList: [copy.buffer as ArrayBuffer] },
    );
    return (await run) as ScanOutcome;
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if ((err as Error).name !== 'AbortError' && (err as Error).name !== 'TimeoutError') throw err;
    budget.exhaustTime();
    return undefined;
  } finally {
    turns.release();
  }
}

function limitFinding(part: string, detail: string): Finding {
  return { symbol: OFFICE_SYMBOLS.ARCHIVE_LIMIT, score: DEFAULT_SCORES[OFFICE_SYMBOLS.ARCHIVE_LIMIT], part, detail };
}

export async function closeScanPool(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.destroy();
}
