// A message's turn for inspection under the process's memory budget (memory-budget.ts), for both
// front ends: the message is counted at its size while it is inspected (its MIME pass decodes every
// part into memory), and a message that has to wait first moves its bytes from memory to its spool
// file, so that whoever waits holds nothing of the budget.
import type { Policy } from '../policy/schema.js';
import { metrics } from '../observe/metrics.js';
import { memoryBudget, type MemoryBudget } from './memory-budget.js';
import type { Spool } from './spool.js';

/** Runs `work` (the message's inspection) once the budget has room for the message; `signal` ends the wait. */
export async function withinMemoryBudget<T>(
  spool: Spool,
  policy: Policy,
  signal: AbortSignal,
  work: () => Promise<T>,
  options: { front?: 'smtp' | 'milter'; budget?: MemoryBudget } = {},
): Promise<T> {
  const { budget = memoryBudget } = options;
  budget.capacity = policy.limits.memoryBudget ?? Infinity;
  let lease = budget.tryAcquire(spool.size);
  if (!lease) {
    if (options.front) metrics.memoryWaits.inc({ front: options.front });
    await spool.spill();
    lease = await budget.acquire(spool.size, signal);
  }
  try {
    return await work();
  } finally {
    lease.release();
  }
}
