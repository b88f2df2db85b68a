// Relay control for one RCPT: may this client send to this recipient, and which line goes downstream.
//
// Internal clients (network.internalNetworks) may send anywhere. Anyone else only to an address the
// downstream will read as a mailbox in network.internalDomains, judged on the line as it will be
// forwarded, byte for byte. A downstream MTA routes more forms than `local@domain`: Postfix's
// defaults (allow_percent_hack, swap_bangpath, resolve_dequoted_address) turn
// `x%evil.example@corp.example`, `evil.example!x@corp.example` and `"x@evil.example"@corp.example`
// into `x@evil.example`, and relay it when the gateway in front is trusted. So from outside:
//   - the local part is dot-atom text (quoted or not) without `%`, `!`, `@`, backslashes, quotes or
//     anything that compatibility-normalises (NFKC) to them;
//   - no source route (`@hop1,@hop2:`), and nothing after the path but ESMTP parameters;
//   - the domain is plain ASCII letters, digits, `-`, `_` and dots, equal (ASCII case aside) to an
//     internal domain: no Unicode full stop (U+3002, U+FF0E, U+FF61: smtp-server reads them as dots, a
//     downstream may not), no trailing dot, no address literal, no U-label or other non-ASCII form.
// `<postmaster>` (no domain, any case; RFC 5321 §4.5.1) is accepted from anyone and sent downstream
// as the configured postmaster address (see postmasterAddress).
import type { Policy } from '../policy/schema.js';
import { inNetworks, isInternalDomain } from '../policy/network.js';
import { hex } from './command-line.js';
import { parsePath, unquote, type SmtpPath } from './smtp-path.js';

export type RecipientDecision =
  | {
      accepted: true;
      /** the RCPT line to forward: the client's own, or the postmaster rewrite */
      line: string;
      /** the recipient to record for the message */
      address: string;
    }
  | {
      accepted: false;
      /** reply for the client, as `code` and text with its enhanced status code */
      code: number;
      text: string;
      /** why, for the log; undefined for a plain recipient outside the internal domains */
      form?: string;
    };

/**
 * @param line the client's RCPT line as it would be forwarded
 * @param parsed smtp-server's reading of the address: recorded for accepted ordinary recipients
 */
export function judgeRecipient(policy: Policy, clientAddress: string, line: string, parsed: string): RecipientDecision {
  const result = parsePath(line);
  const path = 'path' in result ? result.path : undefined;
  const internalClient = inNetworks(policy.network.internalNetworks, clientAddress);
  const shown = path?.inner ?? parsed;
  const refuse = (form: string): RecipientDecision => ({ accepted: false, code: 554, text: `5.7.1 <${shown}>: Relay access denied: ${form}`, form });

  if (path && !path.route && path.domain === undefined && /^postmaster$/i.test(path.localPart)) {
    const params = internalClient ? undefined : parametersProblem(path.params);
    if (params) return refuse(params);
    const postmaster = postmasterAddress(policy);
    if (!postmaster) return { accepted: true, line, address: parsed };
    return { accepted: true, line: `${path.prefix}${postmaster}>${path.params}`, address: postmaster };
  }
  if (internalClient) return { accepted: true, line, address: parsed };

  const form = path ? formProblem(path) : `not RFC 5321 syntax (${'error' in result ? result.error : ''})`;
  if (form) return refuse(form);
  if (!isInternalDomain(policy, path!.domain!)) return { accepted: false, code: 554, text: `5.7.1 <${shown}>: Relay access denied` };
  return { accepted: true, line, address: parsed };
}

/**
 * Where `<postmaster>` goes: network.postmaster, else postmaster at the first internal domain that
 * is not a wildcard; undefined (forward `<postmaster>` as sent) when the policy names neither.
 */
export function postmasterAddress(policy: Policy): string | undefined {
  if (policy.network.postmaster) return policy.network.postmaster;
  const domain = policy.network.internalDomains.find((d) => !d.startsWith('*.'));
  return domain ? `postmaster@${domain}` : undefined;
}

/** Why this path is not a plain `local@domain` the downstream must read as we do; undefined if it is. */
export function formProblem(path: SmtpPath): string | undefined {
  if (path.route) return 'source route';
  return localPartProblem(path) ?? domainProblem(path.domain) ?? parametersProblem(path.params);
}

/** RFC 5321 esmtp-param: keyword[=value], the value printable ASCII without '=' and spaces */
const ESMTP_PARAM = /^[A-Za-z0-9][A-Za-z0-9-]*(?:=[!-<>-~]+)?$/;

/** smtp-server takes anything after the path as parameters; a downstream might read a second path there */
function parametersProblem(params: string): string | undefined {
  const odd = params.split(' ').find((param) => param && !ESMTP_PARAM.test(param));
  return odd === undefined ? undefined : 'a parameter that is not RFC 5321 syntax';
}

const ROUTING: Record<string, string> = { '%': 'percent hack (%)', '!': 'bang path (!)', '@': 'an @' };
/** RFC 5321 atext without the routing characters `%` and `!` */
const ASCII_ATEXT = /^[A-Za-z0-9#$&'*+\-/=?^_`{|}~]$/;
/** non-ASCII text a local part may hold (RFC 6531): letters, marks and digits of any script */
const UNICODE_WORD = /^[\p{L}\p{M}\p{N}]$/u;

function localPartProblem(path: SmtpPath): string | undefined {
  const raw = path.localPart;
  if (raw.includes('\\')) return 'backslash in the local part';
  const text = path.quoted ? unquote(raw) : raw;
  if (!text) return 'empty local part';
  // a downstream that folds Unicode compatibility forms (U+FF05 to '%') must find nothing either
  const variants = [
    [text, ''],
    [text.normalize('NFKC'), ' (after Unicode compatibility normalisation)'],
  ] as const;
  for (const [variant, label] of variants) {
    const routing = [...variant].find((c) => c in ROUTING);
    if (routing) return `${ROUTING[routing]} in the local part${label}`;
  }
  for (const [variant, label] of variants) {
    const odd = [...variant].find((c) => c !== '.' && !ASCII_ATEXT.test(c) && !(c.charCodeAt(0) > 0x7f && UNICODE_WORD.test(c)));
    if (odd) return `${describe(odd)} in the local part${label}`;
  }
  if (/^\.|\.\.|\.$/.test(text)) return 'misplaced dot in the local part';
  return undefined;
}

const UNICODE_FULL_STOPS = /[\u3002\uff0e\uff61]/u;
const ASCII_DOMAIN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

function domainProblem(domain: string | undefined): string | undefined {
  if (domain === undefined) return 'no domain';
  if (!domain) return 'empty domain';
  if (domain.startsWith('[')) return 'address literal';
  const stop = UNICODE_FULL_STOPS.exec(domain);
  if (stop) return `Unicode full stop ${hex(stop[0].charCodeAt(0))} in the domain`;
  if (domain.endsWith('.')) return 'trailing dot in the domain';
  const routing = [...domain].find((c) => c in ROUTING);
  if (routing) return `${ROUTING[routing]} in the domain`;
  if ([...domain].some((c) => c.charCodeAt(0) > 0x7f)) return 'non-ASCII domain (an internal IDN domain is accepted in its xn-- form)';
  if (!ASCII_DOMAIN.test(domain)) return 'not a plain domain name';
  return undefined;
}

function describe(c: string): string {
  const code = c.codePointAt(0)!;
  return code > 0x20 && code < 0x7f ? `'${c}'` : hex(code);
}
