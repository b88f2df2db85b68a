// What an analyzer saw, rspamd-style: a named symbol with a score, so every verdict can be explained
// in logs, quarantine metadata and `mailmoat scan` alike.
export interface Finding {
  symbol: string;
  score: number;
  /** where in the message: 'invoice.zip > invoice.docm > word/vbaProject.bin' */
  part?: string;
  /** one line for a human: 'Document_Open calls Shell' */
  detail?: string;
  /** SHA-256 of the normalised macro source, so a known business macro can be allow-listed */
  sha256?: string;
}
