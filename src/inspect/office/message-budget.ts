// What one message may still spend on scanning, across all its leaves and every worker turn, in
// either front end: decompressed bytes, archive entries, password attempts (each key derivation
// made once, key-cache.ts) and scanning time. Each scan in a worker gets what is left and gives
// back what it spent; a message's leaves are scanned one after another, so nothing races.
import type { OfficeLimits } from './types.js';

/** The part of a message's budget a worker needs (structured-clone friendly). */
export interface BudgetShare {
  bytesLeft: number;
  entriesLeft: number;
  passwordAttemptsLeft: number;
  /** scanning time left; the worker turns it into a deadline when it starts */
  timeLeftMs: number;
  /** the message's key derivations so far */
  keys: [string, Uint8Array][];
}

/** What a worker turn spent (and derived). */
export interface TurnSpent {
  bytesLeft: number;
  entriesLeft: number;
  passwordAttemptsLeft: number;
  elapsedMs: number;
  /** key derivations made in this turn */
  derived: [string, Uint8Array][];
  /** the turn ended early (key-cache.ts): what it read is read again next turn, only its derivations count */
  deferred: boolean;
}

export class MessageBudget {
  bytesLeft: number;
  entriesLeft: number;
  passwordAttemptsLeft: number;
  timeLeftMs: number;
  /** worker time this message has had: the pool serves the message that has had least first */
  workedMs = 0;
  private readonly keys = new Map<string, Uint8Array>();

  constructor(readonly limits: OfficeLimits) {
    this.bytesLeft = limits.maxBytes;
    this.entriesLeft = limits.maxEntries;
    this.passwordAttemptsLeft = limits.maxPasswordAttempts;
    this.timeLeftMs = limits.timeoutMs;
  }

  share(): BudgetShare {
    const { bytesLeft, entriesLeft, passwordAttemptsLeft, timeLeftMs } = this;
    return { bytesLeft, entriesLeft, passwordAttemptsLeft, timeLeftMs, keys: [...this.keys] };
  }

  settle(spent: TurnSpent): void {
    this.workedMs += spent.elapsedMs;
    this.timeLeftMs -= spent.elapsedMs;
    for (const [id, key] of spent.derived) this.keys.set(id, key);
    if (spent.deferred) {
      this.passwordAttemptsLeft -= spent.derived.length;
      return;
    }
    this.bytesLeft = spent.bytesLeft;
    this.entriesLeft = spent.entriesLeft;
    this.passwordAttemptsLeft = spent.passwordAttemptsLeft;
  }

  /** Spent in full: a scan overran its time by far and its worker was stopped. */
  exhaustTime(): void {
    this.timeLeftMs = 0;
  }
}
