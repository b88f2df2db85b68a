// Password key derivations of one message. A password attempt on an encrypted document costs a
// key derivation (Agile: ~100,000 SHA-512 rounds, Standard: 50,000 SHA-1 rounds); the cost is in
// (algorithm, spin count, salt, password), not in the document. A message that carries the same
// encrypted document thirty times (each copy a byte apart, so every copy is scanned) pays for each
// password once: a derivation already made for this message is reused and spends no attempt.
//
// The cache also cuts a worker's turn short (pool.ts): past the end of its turn, and after at least
// one derivation, the next derivation is left for the message's next turn. The scan then ends
// early as `deferred`, its findings are dropped, and the leaf is scanned again with what was derived
// so far: no scan holds a worker for more than about one derivation past its turn.
import type { ScanBudget } from './types.js';

export interface KeyId {
  /** the hash the derivation iterates (sha1, sha512, ...) */
  alg: string;
  spinCount: number;
  salt: Buffer;
  password: string;
}

export type Derived = Buffer | 'exhausted' | 'deferred' | null;

export class KeyCache {
  private readonly known: Map<string, Buffer>;
  /** derived during this scan: handed back to the message's budget */
  readonly derived = new Map<string, Buffer>();
  /** a derivation was left for the next turn: this scan's findings are incomplete */
  deferred = false;

  /** `turnEnd` (Date.now()): the end of this worker turn; Infinity for a scan that runs to its end. */
  constructor(
    known: Iterable<readonly [string, Uint8Array]> = [],
    private readonly turnEnd = Infinity,
  ) {
    this.known = new Map([...known].map(([id, key]) => [id, Buffer.from(key.buffer, key.byteOffset, key.byteLength)]));
  }

  /**
   * The derived key for `id`: from this message's earlier derivations (free), or computed, spending
   * one of the budget's password attempts. 'exhausted' when no attempt is left, 'deferred' when the
   * turn is over, null when `compute` gave up (the time budget ran out mid-derivation).
   */
  derive(id: KeyId, budget: ScanBudget, compute: () => Buffer | null): Derived {
    const key = `${id.alg}:${id.spinCount}:${id.salt.toString('base64')}:${id.password}`;
    const cached = this.known.get(key) ?? this.derived.get(key);
    if (cached) return cached;
    if (budget.passwordAttemptsLeft <= 0) return 'exhausted';
    if (this.deferred || (this.derived.size > 0 && Date.now() >= this.turnEnd)) {
      this.deferred = true;
      return 'deferred';
    }
    budget.passwordAttemptsLeft--;
    const value = compute();
    if (value) this.derived.set(key, value);
    return value;
  }
}
