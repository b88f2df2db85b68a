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

let pool: Piscina | undefined;

function workers(): Piscina {
  pool ??= new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: 1,
    // at least two: one slow scan (a bomb up to its budget) must not hold up every other attachment
    maxThreads: Math.max(2, availableParallelism()),
    idleTimeout: 60_000,
  });
  return pool;
}

/**
 * One attachment's scan in a worker. Bytes in a SharedArrayBuffer (as the MIME walk decodes them)
 * reach the worker without a copy. `signal` (the client went away) stops the scan: the promise
 * then rejects with its reason.
 */
export async function scanAttachmentOffThread(
  bytes: Buffer,
  filename: string | undefined,
  contentType: string | undefined,
  passwords: string[],
  limits: OfficeLimits,
  options: { path?: string[]; signal?: AbortSignal } = {},
): Promise<Finding[]> {
  const task: ScanTask = { bytes, filename, contentType, passwords, limits, path: options.path };
  const hardLimit = limits.timeoutMs * 2 + 5000;
  const timeout = AbortSignal.timeout(hardLimit);
  try {
    return (await workers().run(task, { signal: options.signal ? AbortSignal.any([timeout, options.signal]) : timeout })) as Finding[];
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
