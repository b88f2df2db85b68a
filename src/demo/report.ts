// The demo's readable summary: each step as what was sent, the SMTP reply, the verdict with its
// symbols and where the message ended up, checked against what the step is meant to show.
import { formatReply, type SmtpReply } from '../relay/smtp-client.js';
import type { TransactionReplies } from './submit.js';

/** The fields of the gateway's `message` log line the summary shows. */
export interface MessageLine {
  id: string;
  from: string;
  rcpt: string[];
  verdict: string;
  score: number;
  symbols: string[];
  findings?: { symbol: string; score: number; part?: string; detail?: string; excepted?: boolean }[];
}

export class Report {
  private failed = 0;
  private steps = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  line(text = ''): void {
    this.out.write(text + '\n');
  }

  step(title: string): void {
    this.steps++;
    this.line();
    this.line(`${this.steps}. ${title}`);
  }

  field(name: string, value: string): void {
    this.line(`   ${name.padEnd(8)} ${value}`);
  }

  /** The step's outcome: ✔ when it is what the step shows, ✘ with what happened instead. */
  result(ok: boolean, good: string, bad: string): void {
    if (!ok) this.failed++;
    this.field('result', ok ? `✔ ${good}` : `✘ ${bad}`);
  }

  get failures(): number {
    return this.failed;
  }

  get stepCount(): number {
    return this.steps;
  }
}

/** The reply that ended the transaction: to the final dot, else the refusal of MAIL or RCPT. */
export function lastReply(replies: TransactionReplies): SmtpReply {
  return replies.data ?? replies.rcpts.find((r) => r.code >= 300) ?? replies.mail;
}

export function replyText(replies: TransactionReplies): string {
  return formatReply(lastReply(replies));
}

/** `quarantine, score 20: OFFICE_MACRO (10) in invoice.doc > …, …`; the findings' places as the log and `quarantine show` name them. */
export function verdictText(line: MessageLine | undefined): string[] {
  if (!line) return ['(no log line for this message)'];
  const findings = (line.findings ?? []).filter((f) => !f.excepted);
  const head = `${line.verdict}, score ${line.score}${findings.length ? ':' : ', nothing found'}`;
  return [head, ...findings.map((f) => `  ${f.symbol} (${f.score})${f.part ? ` in ${f.part}` : ''}${f.detail ? `: ${f.detail}` : ''}`)];
}
