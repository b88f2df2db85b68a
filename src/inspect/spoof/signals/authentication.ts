// SPF, DKIM, DMARC, ARC of the message, only when a decision depends on them (a reply, a From/envelope
// mismatch, another signal): their findings (AUTH_*) and what the other signals read from them.
import type { Finding } from '../../finding.js';
import { authenticateMessage, type AuthSummary } from '../auth.js';
import { policyResolver } from '../dns.js';
import { listEvidence } from '../evidence.js';
import { orgDomain } from '../names.js';
import { finding } from '../scoring.js';
import { SPOOF_SYMBOLS, type SpoofSymbol } from '../symbols.js';
import type { MessageView } from '../view.js';

export interface Authentication {
  /** null: not run (not needed, switched off, no raw message) or did not complete */
  auth: AuthSummary | null;
  /** the Authentication-Results header mailauth composed */
  header?: string;
  findings: Finding[];
  dmarcPass: boolean;
  /** a DKIM signature of the From's organisation verified (DMARC's DKIM half, whether or not the domain publishes DMARC) */
  alignedDkim: boolean;
  /** list or forwarder evidence, whether or not From and envelope differ */
  listed: string | null;
  /**
   * why From and envelope may differ (list or forwarder evidence, an aligned DKIM signature, later a
   * mailing service the memory knows for the From domain); null when they agree or nothing explains it
   */
  evidence: string | null;
}

export async function authenticate(view: MessageView, needed: boolean): Promise<Authentication> {
  const { input, from, mailFrom } = view;
  const { policy, client } = input;
  const cfg = policy.spoof;
  let auth: AuthSummary | null = null;
  let header: string | undefined;
  const findings: Finding[] = [];
  if (cfg.authentication && input.raw && needed) {
    try {
      auth = await authenticateMessage(input.raw(), {
        sender: mailFrom,
        ip: client.address,
        helo: client.helo,
        mta: policy.hostname,
        resolver: input.resolver ?? policyResolver(policy.dns),
        timeoutMs: policy.dns.timeout,
      });
      header = auth.header || undefined;
      findings.push(...authenticationFindings(auth, from.address, view.fromOrg));
    } catch (err) {
      findings.push(finding('AUTH_TEMPERROR', `authentication did not complete: ${(err as Error).message}`.slice(0, 200), policy));
    }
  }
  const listed = listEvidence(input.headers, mailFrom, from.address, auth);
  const alignedDkim = !!auth && alignedSignature(auth, view.fromOrg) !== undefined;
  return {
    auth,
    ...(header ? { header } : {}),
    findings,
    dmarcPass: auth?.dmarc?.result === 'pass',
    alignedDkim,
    listed,
    evidence: view.orgMismatch ? (listed ?? (alignedDkim ? 'DKIM aligned with From' : null)) : null,
  };
}

/** A verified DKIM signature of the From's organisation (relaxed alignment). */
function alignedSignature(auth: AuthSummary, fromOrg: string) {
  return fromOrg ? auth.dkim.find((d) => d.result === 'pass' && d.domain && orgDomain(d.domain) === fromOrg) : undefined;
}

function authenticationFindings(auth: AuthSummary, from: string, fromOrg: string): Finding[] {
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
  const aligned = alignedSignature(auth, fromOrg);
  if (aligned && auth.dmarc?.result !== 'pass')
    push('AUTH_DKIM_ALIGNED', s.AUTH_DKIM_ALIGNED.score, `DKIM signature of ${aligned.domain} verifies and aligns with From ${from}`);
  return out;
}
