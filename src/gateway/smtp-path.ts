// The path of a MAIL FROM / RCPT TO line, read from the line the gateway forwards, the way the
// downstream will read it (RFC 5321 §4.1.2 and §4.1.3, with RFC 6531's UTF-8). smtp-server's own parse
// is lenient and normalising: it drops source routes and decodes punycode, which also turns U+3002,
// U+FF0E and U+FF61 into '.'. Relay control therefore never judges smtp-server's address.

export interface SmtpPath {
  /** the line up to and including '<' */
  prefix: string;
  /** the text between '<' and '>', as sent */
  inner: string;
  /** `@hop1,@hop2` of a source route as sent; '' when there is none */
  route: string;
  /** the local part as sent, quotes and backslashes included */
  localPart: string;
  /** the local part written as a quoted string */
  quoted: boolean;
  /** the text after the last '@' outside a quoted string, as sent; undefined when there is no such '@' */
  domain: string | undefined;
  /** everything after '>' (the ESMTP parameters, with their leading space) */
  params: string;
}

export type PathParse = { path: SmtpPath } | { error: string };

const VERB = /^(MAIL FROM|RCPT TO) *: */i;

/**
 * Splits the path of a MAIL/RCPT line into its parts, as sent. Only the structure is checked here
 * (one path in angle brackets, a closed quoted string, a well-formed route); what the parts may
 * contain is the caller's judgement.
 */
export function parsePath(line: string): PathParse {
  const verb = VERB.exec(line);
  if (!verb || line[verb[0].length] !== '<') return { error: 'no path in angle brackets' };
  const open = verb[0].length;
  const close = line.indexOf('>', open);
  if (close === -1) return { error: 'the path is not closed with >' };
  const inner = line.slice(open + 1, close);
  const params = line.slice(close + 1);
  if (inner.includes('<')) return { error: 'angle brackets inside the path' };
  if (params && !params.startsWith(' ')) return { error: 'text right after the path' };

  let mailbox = inner;
  let route = '';
  if (inner.startsWith('@')) {
    const colon = inner.indexOf(':');
    route = colon === -1 ? inner : inner.slice(0, colon);
    if (colon === -1 || !/^@[^@,:"]+(?:,@[^@,:"]+)*$/.test(route)) return { error: 'a malformed source route' };
    mailbox = inner.slice(colon + 1);
  }

  const at = lastAtOutsideQuotes(mailbox);
  if (at === 'unclosed') return { error: 'an unclosed quoted string' };
  const localPart = at === -1 ? mailbox : mailbox.slice(0, at);
  const domain = at === -1 ? undefined : mailbox.slice(at + 1);
  const quoted = localPart.startsWith('"');
  if (quoted && !isQuotedString(localPart)) return { error: 'text around the quoted local part' };
  return { path: { prefix: line.slice(0, open + 1), inner, route, localPart, quoted, domain, params } };
}

/** Index of the last '@' outside a quoted string (backslash escapes honoured inside quotes). */
function lastAtOutsideQuotes(text: string): number | 'unclosed' {
  let inQuotes = false;
  let last = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes && c === '\\') i++;
    else if (c === '"') inQuotes = !inQuotes;
    else if (c === '@' && !inQuotes) last = i;
  }
  return inQuotes ? 'unclosed' : last;
}

/** The whole text is one quoted string: `"` ... `"`, with no unescaped quote inside. */
function isQuotedString(text: string): boolean {
  if (text.length < 2 || !text.endsWith('"')) return false;
  let i = 1;
  while (i < text.length - 1) {
    if (text[i] === '\\') i += 2;
    else if (text[i] === '"') return false;
    else i++;
  }
  // a backslash just before the last quote escapes it: the string is not closed
  return i === text.length - 1;
}

/** The content of a quoted local part: quotes removed, quoted pairs resolved. */
export function unquote(localPart: string): string {
  return localPart.slice(1, -1).replace(/\\([\s\S])/g, '$1');
}
