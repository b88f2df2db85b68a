// The MIME walk's symbols and fixed bounds. A message past a bound is not read to its end, so it is
// held (MIME_UNPARSEABLE): what the gateway could not read is never relayed as clean.

export const MIME_SYMBOLS = {
  /** the structure could not be read to its end (header block past the limit, too many parts, absurd nesting) */
  MIME_UNPARSEABLE: 'MIME_UNPARSEABLE',
  /** the headers read two ways (two Content-Type/-Transfer-Encoding fields, two boundaries) and the second reading found content the first did not */
  MIME_AMBIGUOUS: 'MIME_AMBIGUOUS',
} as const;

export const MIME_LIMITS = {
  /** leaves of one message, nested messages included (mailsplit refuses more nodes per message than this too) */
  maxParts: 2000,
  /** multiparts inside multiparts: clients give up long before */
  maxNesting: 64,
  /** messages forwarded inside messages */
  maxMessageDepth: 12,
};

/** Default scores (the policy's verdict.symbols decides; see DEFAULT_SYMBOLS) */
export const MIME_SCORES: Record<string, number> = {
  [MIME_SYMBOLS.MIME_UNPARSEABLE]: 5,
  [MIME_SYMBOLS.MIME_AMBIGUOUS]: 3,
};
