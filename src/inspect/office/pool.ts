// Office scans run in worker threads (piscina): decrypting an Agile-encrypted document costs
// ~100,000 SHA-512 rounds per password tried, and a zip bomb is cut off only after its budget: work
// like that must not stall every other SMTP session on the gateway's event loop. A scan that
// overruns its own deadline by far (a parser bug) has its worker terminated: an ARCHIVE_LIMIT
// finding, never a hang.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Finding } from '../finding.js';
import { OFFICE_SYMBOLS, type OfficeLimits } from './types.js';
import type { ScanTask } from './worker.js';
import { joinLeaf } from '../mime/leaf-bytes.js';

let pool: Piscina | undefined;

function workers(): Piscina {
  pool ??= new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    // an idle worker exits, and with it its heap and the garbage of the scans it ran: a burst of large
    // messages leaves no memory held (a cold worker takes ~0.2 s to start)
    minThreads: 0,
    // at least two: one slow scan (a bomb up to its budget) must not hold up every other attachment
    maxThreads: Math.max(2, availableParallelism()),
    idleTimeout: 10_000,
  });
  return pool;
}

/**
 * One attachment's scan in a worker, on a copy of its bytes. `signal` (the client went away) stops
 * the scan: the promise then rejects with its reason.
 */
export async function scanAttachmentOffThread(
  bytes: Buffer,
  filename: string | undefined,
  contentType: string | undefined,
  passwords: string[],
  limits: OfficeLimits,
  options: { path?: string[]; signal?: AbortSignal } = {},
): Promise<Finding[]> {
  // the worker's own copy, moved to it rather than serialised: pages of their own (leaf-bytes.ts),
  // counted by the worker's garbage collector, unmapped when it collects them
  const copy = joinLeaf([bytes]);
  const task: ScanTask = { bytes: copy, filename, contentType, passwords, limits, path: options.path };
  const hardLimit = limits.timeoutMs * 2 + 5000;
  const timeout = AbortSignal.timeout(hardLimit);
  try {
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    return (await workers().run(task, { signal, transferList: [copy.buffer as ArrayBuffer] })) as Finding[];
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    if ((err as Error).name !== 'AbortError' && (err as Error).name !== 'TimeoutError') throw err;
    return [
      {
        symbol: OFFICE_SYMBOLS.ARCHIVE_LIMIT,
        score: 0,
        part: options.path?.join(' > ') || filename || 'attachment',
        detail: `scan stopped after ${hardLimit} ms`,
      },
    ];
  }
}

export async function closeScanPool(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.destroy();
}
