// The separate password mail ("PPAP"): Japanese business mail sends an encrypted zip, then its
// password in a second message minutes later, and Emotet copied that. The zip alone is held as
// unscannable; this puts the pair back together, in either order, for both front ends.
//
// - A message held in our quarantine with an encrypted part that no password opened is remembered
//   (envelope sender, recipients, quarantine id) for office.passwordWait (src/state/password-memory.ts).
// - A relayed message with password candidates (src/inspect/office/passwords.ts) is remembered too,
//   and tried on the sender's held items whose recipients overlap its own.
// - A newly held item is tried at once with the candidates of the sender's recent mail to an
//   overlapping set of recipients (the password mail came first).
// The try (password-retry.ts) reads the item from the store, runs the same MIME pass with the
// candidates first and releases it through the CLI's release code when it is clean and
// office.passwordRelease allows; a macro keeps it held, its metadata naming the macro.
//
// All of it runs after the message's own reply, in the background (the front ends' drain waits for
// it): the password mail is relayed as it came, its reply never waits for the retry. Bounded: at
// most MAX_ITEMS held items per password mail, MAX_TRIES password mails per item, the candidates
// capped, each retry within the office budget of one message.
import type { Logger } from '../observe/log.js';
import { metrics } from '../observe/metrics.js';
import type { Policy } from '../policy/schema.js';
import type { StateBackend } from '../state/index.js';
import { passwordMemoryFor, PasswordMemoryUnavailable, recipientHash, type HeldRecord, type PasswordMemory } from '../state/password-memory.js';
import type { Verdict } from '../verdict.js';
import { GATEWAY_OPERATOR, isLocked, retryWithPasswords, type RetryOutcome } from './password-retry.js';
import { QuarantineStore } from './store.js';

/** Held items one password mail is tried on (the newest). */
export const MAX_ITEMS = 5;
/** Password mails tried on one held item before it is forgotten (an admin can still release it). */
export const MAX_TRIES = 5;
/** Candidates from several earlier mails, tried on a newly held item. */
const MAX_CANDIDATES = 16;

/** What a front end knows of a message once it has answered for it. */
export interface PairFacts {
  id: string;
  front: 'smtp' | 'milter';
  policy: Policy;
  /** the envelope sender as the client gave it ('' for the null sender: never paired) */
  mailFrom: string;
  rcptTo: string[];
  verdict: Verdict;
  /** relayed (or tagged) downstream, or held in the gateway's own quarantine */
  outcome: 'relayed' | 'quarantined';
  /** the message's password candidates, nearest first */
  passwords: string[];
}

export class PasswordPairs {
  private readonly pending = new Set<Promise<void>>();
  /** retries per held item, one after the other (two password mails at once do not scan it twice in parallel) */
  private readonly items = new Map<string, Promise<unknown>>();

  constructor(
    private readonly state: StateBackend,
    private readonly log: Logger,
  ) {}

  /** After the message's reply: remembers it and tries what pairs with it, in the background. Never throws. */
  after(facts: PairFacts): void {
    if (!concerns(facts)) return;
    const work: Promise<void> = this.pair(facts)
      .catch((err: unknown) => {
        const unavailable = err instanceof PasswordMemoryUnavailable;
        if (unavailable) metrics.stateUnavailable.inc({ component: 'password-memory', failMode: 'open' });
        this.log[unavailable ? 'warn' : 'error'](
          { event: unavailable ? 'ppap_state_unavailable' : 'ppap_failed', id: facts.id, front: facts.front, err: (err as Error)?.message ?? String(err) },
          unavailable ? 'separate password mail: state unreachable; held items stay held' : 'separate password mail: pairing failed; held items stay held',
        );
      })
      .finally(() => this.pending.delete(work));
    this.pending.add(work);
  }

  /** Resolves when the background work is done, or after `ms` (what is left stays held, never half released). */
  async drain(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  get busy(): number {
    return this.pending.size;
  }

  private async pair(facts: PairFacts): Promise<void> {
    const memory = passwordMemoryFor(this.state);
    const wait = facts.policy.office.passwordWait;
    const sender = facts.mailFrom;
    const rcpt = [...new Set(facts.rcptTo.map(recipientHash))];
    const now = Date.now();
    if (facts.outcome === 'quarantined') {
      const item: HeldRecord = { id: facts.id, rcpt, at: now, tries: 0 };
      await memory.rememberHeld(sender, item, wait);
      await new QuarantineStore(facts.policy.quarantine.dir)
        .audit({
          action: 'password-wait',
          id: facts.id,
          operator: GATEWAY_OPERATOR,
          result: 'waiting',
          wait,
          detail: 'encrypted and unopened: a separate password mail may open it',
        })
        .catch(() => undefined);
      const earlier = (await memory.lookup(sender, wait)).passwords.filter((p) => overlaps(p.rcpt, rcpt));
      this.log.info(
        { event: 'ppap_held', id: facts.id, front: facts.front, from: sender, rcpt: facts.rcptTo, wait, passwordMails: earlier.map((p) => p.mailId) },
        earlier.length ? 'encrypted item held; trying the passwords of earlier mail' : 'encrypted item held; waiting for a password mail',
      );
      if (!earlier.length) return;
      const candidates = [...new Set(earlier.flatMap((p) => p.passwords))].slice(0, MAX_CANDIDATES);
      await this.retry(memory, facts, sender, item, candidates, earlier.map((p) => p.mailId).join(','));
      return;
    }
    await memory.rememberPasswords(sender, { mailId: facts.id, rcpt, at: now, passwords: facts.passwords }, wait);
    const held = (await memory.lookup(sender, wait)).held.filter((h) => overlaps(h.rcpt, rcpt)).slice(0, MAX_ITEMS);
    this.log.debug(
      { event: 'ppap_passwords', id: facts.id, front: facts.front, from: sender, candidates: facts.passwords.length, held: held.map((h) => h.id) },
      held.length ? 'password candidates for held items' : 'password candidates; no held item of this sender to these recipients',
    );
    for (const item of held) await this.retry(memory, facts, sender, item, facts.passwords, facts.id);
  }

  private async retry(memory: PasswordMemory, facts: PairFacts, sender: string, item: HeldRecord, passwords: string[], from: string): Promise<void> {
    // one item's tries run one after another, each reading the item's count afresh: two password
    // mails close together must not both count from the same number (an item is tried MAX_TRIES times at most)
    const previous = this.items.get(item.id) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.retryOnce(memory, facts, sender, item.id, passwords, from));
    this.items.set(item.id, run);
    try {
      await run;
    } finally {
      if (this.items.get(item.id) === run) this.items.delete(item.id);
    }
  }

  private async retryOnce(memory: PasswordMemory, facts: PairFacts, sender: string, id: string, passwords: string[], from: string): Promise<void> {
    const { policy } = facts;
    const item = (await memory.lookup(sender, policy.office.passwordWait)).held.find((h) => h.id === id);
    if (!item) return; // released, forgotten or expired meanwhile
    const result = await retryWithPasswords(new QuarantineStore(policy.quarantine.dir), id, passwords, policy, from);
    this.logRetry(facts, id, from, passwords.length, result);
    const keep = result.outcome === 'still-locked' ? item.tries + 1 < MAX_TRIES : result.outcome === 'held' && result.locked > 0;
    if (keep) {
      await memory.rememberHeld(sender, { ...item, tries: item.tries + (result.outcome === 'still-locked' ? 1 : 0) }, policy.office.passwordWait);
      return;
    }
    await memory.forgetHeld(sender, id);
    if (result.outcome === 'still-locked') {
      this.log.info(
        { event: 'ppap_forgotten', id, front: facts.front, tries: MAX_TRIES },
        `held item: ${MAX_TRIES} password mails opened nothing; no more are tried (it stays held)`,
      );
    }
  }

  private logRetry(facts: PairFacts, id: string, from: string, candidates: number, result: RetryOutcome): void {
    metrics.passwordRetries.inc({ outcome: result.outcome });
    const verdict = 'verdict' in result ? result.verdict : undefined;
    const release = 'release' in result ? result.release : undefined;
    this.log.info(
      {
        event: 'ppap_retry',
        id,
        passwordMail: from,
        front: facts.front,
        candidates,
        outcome: result.outcome,
        verdict: verdict?.action,
        symbols: verdict?.findings.filter((f) => !f.excepted).map((f) => f.symbol),
        release: release ? { status: release.status, downstream: release.downstream, reason: release.reason } : undefined,
        reason: 'reason' in result ? result.reason : undefined,
      },
      MESSAGES[result.outcome],
    );
  }
}

const MESSAGES: Record<RetryOutcome['outcome'], string> = {
  'still-locked': 'held item: no candidate password opened it',
  released: 'held item opened with a separate password mail, clean: released',
  'clean-held': 'held item opened with a separate password mail, clean: not released',
  held: 'held item opened with a separate password mail: stays held with what it holds',
  gone: 'held item no longer held: left alone',
};

function concerns(facts: PairFacts): boolean {
  if (!facts.policy.office.passwordWait || !facts.mailFrom) return false;
  if (facts.outcome === 'quarantined') return facts.verdict.findings.some(isLocked);
  return facts.passwords.length > 0;
}

function overlaps(a: string[], b: string[]): boolean {
  return a.some((x) => b.includes(x));
}
