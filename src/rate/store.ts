// What the gateway asks of the shared sender-rate state, whichever backend holds it: Redis (one
// atomic script per subject, time from Redis) or the embedded in-memory twin with the same rules.
import type { Plan } from './plan.js';

/** A counted identity: `sender:alice@example.com`, `from:alice@example.com`, `ip:10.0.0.7`. */
export type Subject = string;
export type SubjectType = 'sender' | 'from' | 'ip';
export const subject = (type: SubjectType, value: string): Subject => `${type}:${value.toLowerCase()}`;

/** One accepted message, as the counters see it. */
export interface RateSample {
  office: boolean;
  fromMismatch: boolean;
  macro: boolean;
  spoof: boolean;
  /** distinct recipients outside the internal domains, lower-case */
  externalRecipients: string[];
}

/** Counters of one window, in METRICS order. */
export type Counts = [messages: number, externalRecipients: number, office: number, fromMismatch: number, macro: number, spoof: number];

export interface RecordResult {
  subject: Subject;
  /** the message was counted (false: a blocking threshold or a suspension defers it) */
  committed: boolean;
  /** the suspension (`SYMBOL|since-ms|text`), existing or set by this message */
  suspended: string | null;
  /** indices of the fired thresholds in plan.thresholds; -1 = the baseline rule */
  fired: number[];
  /** per window: the counts including this message (record) or as they stand (peek) */
  counts: Counts[];
  baseline: { current: number; average: number };
}

export interface SubjectStatus {
  subject: Subject;
  suspended: string | null;
  /** a blocking threshold fired recently: `SYMBOL|value|limit|windowMs` */
  hold: string | null;
}

export interface RateStore {
  readonly kind: 'redis' | 'memory';
  /** MAIL time: suspension and hold of each subject (one round trip) */
  status(subjects: Subject[], plan: Plan): Promise<SubjectStatus[]>;
  /** check-and-update for one message, atomically per subject (one round trip for all) */
  record(subjects: Subject[], sample: RateSample, plan: Plan): Promise<RecordResult[]>;
  /** the counters as they stand, no change */
  peek(subjects: Subject[], plan: Plan): Promise<(RecordResult & { hold: string | null })[]>;
  suspend(subject: Subject, reason: string, plan: Plan): Promise<void>;
  /** true when there was a suspension (or hold) to lift */
  unsuspend(subject: Subject, plan: Plan): Promise<boolean>;
  /** subjects with counters in this window (any activity within it) */
  subjects(plan: Plan, window: number): Promise<Subject[]>;
  /** client-side round trips so far (bench) */
  readonly roundTrips: number;
}

export const EMPTY_SAMPLE: RateSample = { office: false, fromMismatch: false, macro: false, spoof: false, externalRecipients: [] };
