// The reply-chain spoofing analyzer: is this "reply" from who the thread says it is from?
// Signals (each a finding, symbols in ./symbols.ts): the quoted thread binds the sender's name to
// another organisation's address; the message replies to a thread we relayed outbound but its
// sender was not in it; a known correspondent's name on a new address; an address inside the display
// name; header From vs envelope sender without list/forwarder evidence or DMARC pass; a reply prefix
// without In-Reply-To/References; SPF/DKIM/DMARC/ARC. Boosters (macro, password, first-time domain)
// count only next to a positive signal. The sum against spoof.thresholds gives SPOOF_SUSPECT/HIJACK.
import type { Readable } from 'node:stream';
import type { Policy } from '../../policy/schema.js';
import { ThreadMemoryUnavailable, type MemoryFacts, type MemoryUpdate, type ThreadMemory, type ThreadPerson } from '../../state/thread-memory.js';
import type { Finding } from '../finding.js';
import type { ClientInfo, Envelope, HeaderField } from '../../message/parsed.js';
import { findPasswords } from '../office/index.js';
import { authenticateMessage, type AuthSummary, type DNSResolver } from './auth.js';
import { policyResolver } from './dns.js';
import { lookalikeSignals } from './lookalike-signal.js';
import { htmlToText, quotedThread, subjectPrefix, type QuotedThread, type SubjectPrefix } from './markers.js';
import { addressesInName, isPersonalName, normaliseName, orgDomain, orgOf, parseMailboxes, type Mailbox } from './names.js';
import { SPOOF_SYMBOLS, type SpoofSymbol } from './symbols.js';
import { domainOf, inNetworks, isInternalDomain } from '../../policy/network.js';

export { SPOOF_SYMBOLS };

export interface SpoofInput {
  headers: HeaderField[];
  /** decoded body text and HTML (undefined when the body was not parsed) */
  text?: string;
  html?: string;
  envelope: Envelope;
  client: ClientInfo;
  /** the findings of the other analyzers (macro, unscannable archive boosters) */
  findings: Finding[];
  policy: Policy;
  /** thread/correspondent memory; undefined: no memory here (e.g. `scan` without state) */
  memory?: ThreadMemory;
  /** the state backend's fail mode (for STATE_FAIL_CLOSED) */
  failMode?: 'open' | 'closed';
  /** DNS for authentication; default: the policy's `dns` section (./dns.ts) */
  resolver?: DNSResolver;
  /** the raw message, for DKIM; without it authentication is skipped */
  raw?: () => Readable | Buffer;
}

export interface SpoofResult {
  findings: Finding[];
  /** the Authentication-Results header mailauth composed, when authentication ran */
  authenticationResults?: string;
}

const header = (headers: HeaderField[], name: string) => headers.find((h) => h.name === name)?.value;

/** Does the message look like a reply or forward from its header block alone? (gates the body parse) */
export function looksLikeReply(headers: HeaderField[]): boolean {
  return !!subjectPrefix(header(headers, 'subject')) || headers.some((h) => h.name === 'in-reply-to' || h.name === 'references');
}

/** Outbound: an internal client sending as an internal domain (envelope sender or header From). */
export function isOutbound(policy: Policy, client: ClientInfo, mailFrom: string, from: string): boolean {
  return (
    inNetworks(policy.network.internalNetworks, client.address) && (isInternalDomain(policy, domainOf(mailFrom)) || isInternalDomain(policy, domainOf(from)))
  );
}

function messageIds(value: string | undefined): string[] {
  return value ? [...value.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1]) : [];
}

/** List or forwarder evidence: the usual reasons why header From and envelope differ legitimately. */
function listEvidence(headers: HeaderField[], mailFrom: string, from: string, auth: AuthSummary | null): string | null {
  const names = new Set(headers.map((h) => h.name));
  for (const n of ['list-id', 'list-unsubscribe', 'list-post', 'list-help', 'mailing-list', 'x-mailing-list', 'x-beenthere', 'resent-from', 'resent-sender']) {
    if (names.has(n)) return n;
  }
  const sender = parseMailboxes(header(headers, 'sender'))[0]?.address;
  if (sender && orgOf(sender) === orgOf(mailFrom)) return 'sender';
  const precedence = header(headers, 'precedence')?.toLowerCase();
  if (precedence === 'list' || precedence === 'bulk') return `precedence ${precedence}`;
  if (auth?.arc === 'pass') return 'arc pass';
  const local = mailFrom.slice(0, mailFrom.lastIndexOf('@')).toLowerCase();
  if (/^srs[01][=+-]/.test(local)) return 'SRS envelope';
  if (/^(prvs|btv1|msprvs1)=/.test(local)) return 'BATV envelope';
  // VERP: the recipient (or the From) encoded in the envelope's local part, e.g. list-bounces+bob=example.com@
  const [fromLocal = '', fromDomain = ''] = from.toLowerCase().split('@');
  if (fromDomain && (local.includes(`${fromLocal}=${fromDomain}`) || /[+=-][a-z0-9._-]+=[a-z0-9.-]+\.[a-z]{2,}$/.test(local))) return 'VERP envelope';
  return null;
}

interface Signal {
  symbol: SpoofSymbol;
  detail: string;
}

export async function analyzeSpoof(input: SpoofInput): Promise<SpoofResult> {
  const { headers, envelope, client, policy } = input;
  const cfg = policy.spoof;
  if (!cfg.enabled) return { findings: [] };
  const signals: Signal[] = [];
  const from = parseMailboxes(header(headers, 'from'))[0] ?? { name: '', address: '' };
  const mailFrom = envelope.mailFrom.toLowerCase();
  const fromOrg = orgOf(from.address);
  const envOrg = orgOf(mailFrom);
  const orgMismatch = !!mailFrom && !!from.address && !!fromOrg && !!envOrg && fromOrg !== envOrg;

  if (isOutbound(policy, client, mailFrom, from.address)) {
    // an internal host sending as someone of another organisation: infected, or misconfigured
    if (orgMismatch)
      signals.push({
        symbol: 'SPOOF_OUTBOUND_FROM_MISMATCH',
        detail: `internal client ${client.address} sends From ${from.address} with envelope ${mailFrom}`,
      });
    return { findings: score(signals, input) };
  }

  const subject = header(headers, 'subject');
  const prefix: SubjectPrefix | null = subjectPrefix(subject);
  const inReplyTo = header(headers, 'in-reply-to');
  const references = header(headers, 'references');
  const referenced = [...messageIds(inReplyTo), ...messageIds(references).reverse()];
  const hasThreadHeaders = inReplyTo !== undefined || references !== undefined;
  const quoted: QuotedThread = quotedThread(input.text, input.html ? htmlToText(input.html) : undefined);
  const isReply = !!prefix || hasThreadHeaders || quoted.blocks.length > 0;
  const rcptOrgs = new Set(
    [...envelope.rcptTo, ...parseMailboxes(header(headers, 'to')).map((m) => m.address), ...parseMailboxes(header(headers, 'cc')).map((m) => m.address)]
      .map(orgOf)
      .filter(Boolean),
  );
  const senderName = normaliseName(from.name);
  const nameAddresses = addressesInName(from.name).filter((a) => orgOf(a) !== fromOrg);

  // address inside the display name, in another organisation
  if (nameAddresses.length) {
    const own = nameAddresses.find((a) => rcptOrgs.has(orgOf(a)));
    signals.push(
      own
        ? { symbol: 'SPOOF_DISPLAY_NAME_RCPT_DOMAIN', detail: `display name carries ${own} (the recipient's organisation) but From is ${from.address}` }
        : { symbol: 'SPOOF_DISPLAY_NAME_ADDRESS', detail: `display name carries ${nameAddresses[0]} but From is ${from.address}` },
    );
  }

  // a lookalike of an internal or known correspondent's domain in From or Reply-To
  signals.push(...(await lookalikeSignals({ headers, from: from.address, isReply, policy, memory: input.memory })));

  // quoted-thread binding conflict
  if (from.address && quoted.bindings.length) {
    const conflict =
      (isPersonalName(senderName) &&
      quoted.bindings.find((b) => b.name === senderName && b.address !== from.address && orgOf(b.address) !== fromOrg) &&
      !quoted.bindings.some((b) => b.name === senderName && orgOf(b.address) === fromOrg)
        ? quoted.bindings.find((b) => b.name === senderName && orgOf(b.address) !== fromOrg)
        : undefined) ?? quoted.bindings.find((b) => nameAddresses.includes(b.address));
    if (conflict) {
      signals.push({
        symbol: 'SPOOF_THREAD_NAME_CONFLICT',
        detail: `"${from.name}" <${from.address}>: the quoted thread has ${conflict.display ? `"${conflict.display}" ` : ''}<${conflict.address}>`,
      });
    }
  }

  // authentication (only when a decision depends on it: a reply, a From/envelope mismatch, a signal)
  let auth: AuthSummary | null = null;
  let authHeader: string | undefined;
  const authFindings: Finding[] = [];
  if (cfg.authentication && input.raw && (isReply || orgMismatch || signals.length)) {
    try {
      auth = await authenticateMessage(input.raw(), {
        sender: mailFrom,
        ip: client.address,
        helo: client.helo,
        mta: policy.hostname,
        resolver: input.resolver ?? policyResolver(policy.dns),
        timeoutMs: policy.dns.timeout,
      });
      authHeader = auth.header || undefined;
      authFindings.push(...authenticationFindings(auth, from.address));
    } catch (err) {
      authFindings.push(finding('AUTH_TEMPERROR', `authentication did not complete: ${(err as Error).message}`.slice(0, 200), policy));
    }
  }
  const dmarcPass = auth?.dmarc?.result === 'pass';

  // header From vs envelope, in context
  const evidence = orgMismatch ? listEvidence(headers, mailFrom, from.address, auth) : null;
  const unexplainedMismatch = orgMismatch && !evidence && !dmarcPass;
  if (unexplainedMismatch) {
    signals.push({
      symbol: isReply ? 'SPOOF_REPLY_FROM_ENVELOPE_MISMATCH' : 'SPOOF_FROM_ENVELOPE_MISMATCH',
      detail: `From ${from.address} (${fromOrg}) vs envelope ${mailFrom} (${envOrg}); no list/forwarder evidence${auth ? `, DMARC ${auth.dmarc?.result ?? 'none'}` : ''}${isReply ? '; in a reply' : ''}`,
    });
  }

  // fake reply
  if (prefix?.kind === 'reply' && !hasThreadHeaders)
    signals.push({ symbol: 'SPOOF_FAKE_REPLY', detail: `subject "${prefix.text}" without In-Reply-To/References` });

  // memory: thread participants, known correspondents (replies), the new-domain booster (next to a
  // positive signal). Plain new mail with nothing suspicious needs no lookup: no round trip.
  const isPositive = (s: Signal) => (policy.verdict.symbols[s.symbol]?.score ?? SPOOF_SYMBOLS[s.symbol].score) > 0;
  let facts: MemoryFacts | undefined;
  const stateFindings: Finding[] = [];
  if (input.memory && from.address && (isReply || signals.some(isPositive))) {
    try {
      facts = await input.memory.lookup({ messageIds: referenced, name: isPersonalName(senderName) ? senderName : '', address: from.address, domain: fromOrg });
    } catch (err) {
      if (!(err instanceof ThreadMemoryUnavailable)) throw err;
      stateFindings.push(finding('STATE_UNAVAILABLE', `thread memory skipped: ${err.message}`.slice(0, 200), policy));
      if (input.failMode === 'closed') stateFindings.push(finding('STATE_FAIL_CLOSED', 'state.failMode is closed', policy));
    }
  }
  if (facts) {
    if (facts.threads.length) {
      const people: ThreadPerson[] = facts.threads.flatMap((t) => [t.from, ...t.to]);
      const participant = people.some((p) => p.address === from.address || orgOf(p.address) === fromOrg);
      if (participant) {
        // the genuine reply bonus needs the envelope to back the From up
        if (!orgMismatch || evidence || dmarcPass) {
          signals.push({
            symbol: 'SPOOF_THREAD_PARTICIPANT',
            detail: `${from.address} took part in the thread (${facts.threads.length} remembered message(s))`,
          });
        }
      } else {
        const namesake = people.find((p) => (isPersonalName(senderName) && p.name === senderName) || nameAddresses.includes(p.address));
        signals.push(
          namesake
            ? {
                symbol: 'SPOOF_THREAD_IMPERSONATION',
                detail: `reply to our thread as "${from.name}" from ${from.address}; the thread has that person as ${namesake.address}`,
              }
            : {
                symbol: 'SPOOF_THREAD_OUTSIDER',
                detail: `reply to our thread from ${from.address}, who was not in it (${people
                  .map((p) => p.address)
                  .slice(0, 5)
                  .join(', ')})`,
              },
        );
      }
    }
    // a known name on a new address: in a reply, sent directly (list mail carries many people's many addresses)
    const known = facts.nameAddresses.filter((a) => a !== from.address);
    const direct = !listEvidence(headers, mailFrom, from.address, auth);
    if (isReply && direct && known.length && !facts.nameAddresses.includes(from.address) && !known.some((a) => orgOf(a) === fromOrg) && !facts.addressKnown) {
      if (!signals.some((s) => s.symbol === 'SPOOF_THREAD_IMPERSONATION')) {
        signals.push({
          symbol: 'SPOOF_KNOWN_NAME_NEW_ADDRESS',
          detail: `"${from.name}" is known as ${known.slice(0, 3).join(', ')}; now from new address ${from.address}`,
        });
      }
    }
  }

  // boosters, only next to a positive signal
  const positive = signals.some(isPositive);
  if (positive) {
    // a macro, a locked archive, or a file that runs code (the waves after macros: LNK, scripts, ISO, smuggling)
    const risky = input.findings.find(
      (f) => /^(OFFICE_|ARCHIVE_ENCRYPTED|ARCHIVE_LIMIT|FILE_|HTML_SMUGGLING|ONENOTE_EMBEDDED_FILE)/.test(f.symbol) && f.symbol !== 'OFFICE_CORRUPT',
    );
    if (risky) signals.push({ symbol: 'SPOOF_CONTEXT_MACRO', detail: `next to ${risky.symbol}` });
    // a password in the body matters next to an attachment it could open
    const attached =
      /^\s*multipart\/(mixed|related)/i.test(header(headers, 'content-type') ?? '') ||
      input.findings.some((f) => /^(OFFICE_|ARCHIVE_|TYPE_MISMATCH|FILE_|HTML_SMUGGLING|ONENOTE_)/.test(f.symbol));
    const body = [input.text ?? '', input.html ? htmlToText(input.html) : ''].join('\n');
    const passwords = attached && body.trim() ? findPasswords(body) : [];
    if (passwords.length) signals.push({ symbol: 'SPOOF_CONTEXT_PASSWORD', detail: 'the body gives a password for an attachment' });
    if (facts && fromOrg && !facts.domainKnown && !isInternalDomain(policy, domainOf(from.address))) {
      signals.push({ symbol: 'SPOOF_CONTEXT_NEW_DOMAIN', detail: `first message from ${fromOrg}` });
    }
  }

  const findings = [...score(signals, input, authFindings), ...stateFindings];
  return { findings, ...(authHeader ? { authenticationResults: authHeader } : {}) };
}

function finding(symbol: SpoofSymbol, detail: string, policy: Policy): Finding {
  return { symbol, score: policy.verdict.symbols[symbol]?.score ?? SPOOF_SYMBOLS[symbol].score, detail };
}

/** Signals (and authentication findings) to findings, plus SPOOF_SUSPECT/SPOOF_HIJACK when their sum reaches spoof.thresholds. */
function score(signals: Signal[], input: SpoofInput, extra: Finding[] = []): Finding[] {
  const { policy } = input;
  const findings = [...signals.map((s) => finding(s.symbol, s.detail, policy)), ...extra];
  const scoreOf = (f: Finding) => policy.verdict.symbols[f.symbol]?.score ?? f.score;
  const total = Math.round(findings.reduce((sum, f) => sum + scoreOf(f), 0) * 100) / 100;
  const { tag, quarantine } = policy.spoof.thresholds;
  const named = findings
    .filter((f) => scoreOf(f) > 0)
    .map((f) => f.symbol)
    .join(', ');
  if (quarantine !== null && total >= quarantine) findings.push(finding('SPOOF_HIJACK', `spoof score ${total} >= ${quarantine}: ${named}`, policy));
  else if (tag !== null && total >= tag) findings.push(finding('SPOOF_SUSPECT', `spoof score ${total} >= ${tag}: ${named}`, policy));
  return findings;
}

function authenticationFindings(auth: AuthSummary, from: string): Finding[] {
  const out: Finding[] = [];
  const push = (symbol: SpoofSymbol, score: number, detail: string) => out.push({ symbol, score, detail });
  const s = SPOOF_SYMBOLS;
  if (auth.temperror) push('AUTH_TEMPERROR', s.AUTH_TEMPERROR.score, 'a DNS lookup failed or timed out; results may be incomplete');
  if (auth.dmarc) {
    const d = auth.dmarc;
    if (d.result === 'pass') push('AUTH_DMARC_PASS', s.AUTH_DMARC_PASS.score, `DMARC pass for ${d.domain}`);
    else if (d.result === 'fail') {
      const symbol = d.policy === 'reject' ? 'AUTH_DMARC_REJECT' : d.policy === 'quarantine' ? 'AUTH_DMARC_QUARANTINE' : 'AUTH_DMARC_NONE_FAIL';
      push(symbol, s[symbol].score, `DMARC fail for ${d.domain} (p=${d.policy}) on From ${from}`);
    }
  }
  if (auth.spf === 'fail') push('AUTH_SPF_FAIL', s.AUTH_SPF_FAIL.score, 'SPF fail for the envelope sender');
  const badDkim = auth.dkim.find((d) => d.result === 'fail');
  if (badDkim) push('AUTH_DKIM_FAIL', s.AUTH_DKIM_FAIL.score, `DKIM signature of ${badDkim.domain} does not verify`);
  if (auth.arc === 'pass') push('AUTH_ARC_PASS', s.AUTH_ARC_PASS.score, 'ARC chain validates');
  return out;
}

/**
 * What a relayed message teaches the memory. Outbound: the thread (Message-ID → sender and
 * recipients), the recipients' names and addresses and their domains. Inbound mail that was relayed
 * without any positive spoof finding: the sender's name ↔ address binding and domain.
 */
export function learnFromRelayed(
  input: { headers: HeaderField[]; envelope: Envelope; client: ClientInfo; policy: Policy },
  findings: { symbol: string; score: number; excepted?: string }[],
): MemoryUpdate | null {
  const { headers, envelope, client, policy } = input;
  if (!policy.spoof.enabled) return null;
  const from = parseMailboxes(header(headers, 'from'))[0] ?? { name: '', address: '' };
  const person = (m: Mailbox): ThreadPerson => ({ address: m.address, name: normaliseName(m.name) });
  if (isOutbound(policy, client, envelope.mailFrom, from.address)) {
    const headerRcpts = ['to', 'cc', 'bcc'].flatMap((n) => headers.filter((h) => h.name === n).flatMap((h) => parseMailboxes(h.value)));
    const to = new Map<string, ThreadPerson>();
    for (const m of headerRcpts) if (m.address) to.set(m.address, person(m));
    for (const r of envelope.rcptTo) if (!to.has(r.toLowerCase())) to.set(r.toLowerCase(), { address: r.toLowerCase(), name: '' });
    const external = [...to.values()].filter((p) => !isInternalDomain(policy, domainOf(p.address)));
    const id = messageIds(header(headers, 'message-id'))[0];
    const sender = from.address ? person(from) : { address: envelope.mailFrom.toLowerCase(), name: '' };
    return {
      threads: id ? [{ messageId: id, record: { from: sender, to: [...to.values()], at: Date.now() } }] : [],
      bindings: [sender, ...to.values()].filter((p) => p.name && p.address && isPersonalName(p.name)),
      addresses: external.map((p) => p.address),
      domains: [...new Set(external.map((p) => orgOf(p.address)).filter(Boolean))],
    };
  }
  const suspicious = findings.some((f) => !f.excepted && f.score > 0 && (f.symbol.startsWith('SPOOF_') || f.symbol.startsWith('AUTH_')));
  if (suspicious || !from.address) return null;
  // list and forwarded mail teaches nothing about who the organisation corresponds with
  if (listEvidence(headers, envelope.mailFrom.toLowerCase(), from.address, null)) return null;
  const sender = person(from);
  const org = orgOf(from.address);
  return {
    threads: [],
    bindings: sender.name && isPersonalName(sender.name) ? [sender] : [],
    addresses: [from.address],
    domains: org ? [org] : [],
  };
}

export { orgDomain };

/**
 * After a message was relayed (the downstream accepted it): teach the thread memory what it shows.
 * Never throws: a memory that cannot be updated is logged (the message is already delivered).
 */
export async function rememberRelayed(
  headers: HeaderField[],
  meta: { id: string; envelope: Envelope; client: ClientInfo; policy: Policy },
  findings: { symbol: string; score: number; excepted?: string }[],
  memory: ThreadMemory,
  log?: { warn(obj: object, msg: string): void },
): Promise<void> {
  try {
    const update = learnFromRelayed({ headers, envelope: meta.envelope, client: meta.client, policy: meta.policy }, findings);
    if (update) await memory.update(update, meta.policy.spoof.memoryTtl);
  } catch (err) {
    log?.warn({ event: 'thread_memory_update_failed', id: meta.id, err: (err as Error).message }, 'thread memory not updated');
  }
}
