// The policy file's schema: the one description of every option, its default and its meaning.
// policies/default.yaml documents the same options for admins; test/unit/policy.test.ts keeps the
// two in step (the default file must parse to exactly these defaults).
import net from 'node:net';
import { z } from 'zod';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: a number of milliseconds, or a string such as `30s`, `5m`, `180d`. */
export const duration = z
  .union([z.number().int().nonnegative(), z.string().regex(DURATION, 'a duration such as 500ms, 30s, 5m, 2h or 180d')])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const [, amount, unit] = DURATION.exec(value)!;
    return Number(amount) * UNIT_MS[unit!]!;
  });

/** A size in bytes: a number, or a string such as `25MB`, `512KB`. */
const SIZE = /^(\d+)\s*(B|KB|MB|GB)$/i;
const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
export const byteSize = z
  .union([z.number().int().nonnegative(), z.string().regex(SIZE, 'a size such as 512KB or 25MB')])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const [, amount, unit] = SIZE.exec(value)!;
    return Number(amount) * UNIT_BYTES[unit!.toUpperCase()]!;
  });

/** `10.0.0.0/8`, `2001:db8::/32`, or a single address (a /32 or /128). */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  const version = net.isIP(address);
  if (!version || rest.length) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
    return null;
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}
const cidr = z.string().refine((s) => parseCidr(s) !== null, 'a network in CIDR form, e.g. 10.0.0.0/8 or ::1/128');

const domain = z
  .string()
  .regex(/^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.?$/i, 'a domain name, e.g. example.com')
  .transform((d) => d.toLowerCase().replace(/\.$/, ''));

const hostPort = { host: z.string().min(1), port: z.number().int().min(1).max(65535) };

/**
 * What the gateway does with a message. Implemented now: relay, defer (451), reject (554).
 * quarantine and tag arrive with the quarantine store and the tagging issue; the schema refuses them
 * until then, so a policy never names an action the gateway cannot take.
 */
export const ACTIONS = ['relay', 'defer', 'reject'] as const;
export const action = z.enum(ACTIONS);
export type Action = z.infer<typeof action>;

const headerRule = z.strictObject({
  symbol: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'an upper-case symbol such as SUBJECT_BLOCKED'),
  header: z.string().regex(/^[!-9;-~]+$/, 'a header field name such as Subject'),
  match: z.string().refine((source) => {
    try {
      new RegExp(source, 'iu');
      return true;
    } catch {
      return false;
    }
  }, 'a valid regular expression'),
  score: z.number().default(0),
  action: action.optional(),
  description: z.string().optional(),
});

const sizeRule = z.strictObject({
  symbol: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
  over: byteSize,
  score: z.number().default(0),
  action: action.optional(),
  description: z.string().optional(),
});

export const policySchema = z.strictObject({
  listen: z.strictObject({ ...hostPort }).prefault({ host: '127.0.0.1', port: 10025 }),
  hostname: z.string().min(1).default('mailmoat.localdomain'),
  tls: z
    .strictObject({ cert: z.string().min(1), key: z.string().min(1) })
    .nullable()
    .default(null),
  limits: z
    .strictObject({
      maxMessageSize: byteSize.default(26_214_400),
      maxRecipients: z.number().int().min(1).default(1000),
      maxClients: z.number().int().min(1).default(200),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      client: duration.default(60_000),
      greetingDelay: duration.default(0),
      downstreamConnect: duration.default(10_000),
      downstreamCommand: duration.default(30_000),
      downstreamData: duration.default(90_000),
      downstreamIdle: duration.default(5_000),
      drain: duration.default(30_000),
    })
    .prefault({}),
  downstream: z
    .strictObject({
      ...hostPort,
      starttls: z.enum(['off', 'opportunistic', 'required']).default('opportunistic'),
      tlsVerify: z.boolean().default(false),
      xforward: z.boolean().default(true),
      idleConnections: z.number().int().min(0).default(32),
    })
    .prefault({ host: '127.0.0.1', port: 10026 }),
  xforwardHosts: z.array(cidr).default(['127.0.0.0/8', '::1/128']),
  network: z
    .strictObject({
      internalNetworks: z.array(cidr).default(['127.0.0.0/8', '::1/128']),
      internalDomains: z.array(domain).default([]),
    })
    .prefault({}),
  state: z
    .discriminatedUnion('backend', [
      z.strictObject({ backend: z.literal('memory') }),
      z.strictObject({
        backend: z.literal('redis'),
        url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
        failMode: z.enum(['open', 'closed']).default('open'),
      }),
    ])
    .prefault({ backend: 'memory' }),
  spool: z
    .strictObject({
      dir: z.string().min(1).default('var/spool'),
      memoryLimit: byteSize.default(1_048_576),
    })
    .prefault({}),
  relay: z
    .strictObject({
      verdictHeader: z.boolean().default(false),
    })
    .prefault({}),
  rules: z
    .strictObject({
      headers: z.array(headerRule).default([]),
      size: z.array(sizeRule).default([]),
    })
    .prefault({}),
  verdict: z
    .strictObject({
      thresholds: z
        .strictObject({ defer: z.number().nullable().default(null), reject: z.number().nullable().default(15) })
        .prefault({}),
      symbols: z
        .record(
          z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'an upper-case symbol'),
          z.strictObject({ score: z.number().optional(), action: action.optional() }),
        )
        .default({}),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).prefault({}),
});

export type Policy = z.infer<typeof policySchema>;
export type HeaderRule = z.infer<typeof headerRule>;
export type SizeRule = z.infer<typeof sizeRule>;
