// The policy file's schema: the one description of every option, its default and its meaning.
// policies/default.yaml documents the same options for admins; test/unit/policy.test.ts keeps the
// two in step (the default file must parse to exactly these defaults).
import net from 'node:net';
import { z } from 'zod';
import { SPOOF_SYMBOLS } from '../inspect/spoof/symbols.js';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: a number of milliseconds, or a string such as `30s`, `5m`, `180d`. */
export const duration = z
  .union([z.number().int().nonnegative(), z.string().regex(DURATION, 'a duration such as 500ms, 30s, 5m, 2h or 180d')])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const [, amount, unit] = DURATION.exec(value)!;
    return Number(amount) * UNIT_MS[unit];
  });

/** A size in bytes: a number, or a string such as `25MB`, `512KB`. */
const SIZE = /^(\d+)\s*(B|KB|MB|GB)$/i;
const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
export const byteSize = z.union([z.number().int().nonnegative(), z.string().regex(SIZE, 'a size such as 512KB or 25MB')]).transform((value) => {
  if (typeof value === 'number') return value;
  const [, amount, unit] = SIZE.exec(value)!;
  return Number(amount) * UNIT_BYTES[unit.toUpperCase()];
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
/** A name server by address: `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:5353` (port 53 when none). */
export function parseNameServer(text: string): { host: string; port: number } | null {
  const t = text.trim();
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(t);
  const plain = /^([^:\s]+)(?::(\d{1,5}))?$/.exec(t);
  const [host, portText] = bracketed ? [bracketed[1], bracketed[2]] : plain ? [plain[1], plain[2]] : net.isIPv6(t) ? [t, undefined] : [];
  if (!host || !net.isIP(host)) return null;
  const port = portText === undefined ? 53 : Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : null;
}

const cidr = z.string().refine((s) => parseCidr(s) !== null, 'a network in CIDR form, e.g. 10.0.0.0/8 or ::1/128');

const domain = z
  .string()
  .regex(/^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.?$/i, 'a domain name, e.g. example.com')
  .transform((d) => d.toLowerCase().replace(/\.$/, ''));

/** A plain `local@domain` address: dot-atom local part without the routing characters % and !. */
const mailbox = z
  .string()
  .regex(
    /^[A-Za-z0-9#$&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9#$&'*+\-/=?^_`{|}~]+)*@([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/i,
    'a plain address such as postmaster@example.com',
  );

const hostPort = { host: z.string().min(1), port: z.number().int().min(1).max(65535) };

/** Where the milter listens, in Postfix's notation: `inet:HOST:PORT` (`inet:[::1]:PORT`) or `unix:/path`. */
export const MILTER_LISTEN = /^(?:inet:(?:\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):\d{1,5}|unix:\/\S+)$/;

/**
 * What the gateway does with a message, least to most severe: relay it; tag it (relay with an
 * X-Mailmoat-Verdict header); quarantine it (kept durably, 250 to the client, releasable by an
 * admin); defer it (451 4.7.1); reject it (550 5.7.1).
 */
export const ACTIONS = ['relay', 'tag', 'quarantine', 'defer', 'reject'] as const;
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

/** What the Office engine finds, and what happens by default (listed in policies/default.yaml). */
export const DEFAULT_SYMBOLS: Record<string, { score?: number; action?: Action }> = {
  OFFICE_MACRO: { score: 10, action: 'quarantine' },
  OFFICE_MACRO_AUTOEXEC: { score: 5, action: 'quarantine' },
  OFFICE_MACRO_SUSPICIOUS: { score: 5, action: 'quarantine' },
  OFFICE_XLM_MACRO: { score: 10, action: 'quarantine' },
  OFFICE_VBA_PROJECT_EMPTY: { score: 1, action: 'tag' },
  OFFICE_ENCRYPTED_UNSCANNABLE: { score: 5, action: 'quarantine' },
  ARCHIVE_ENCRYPTED_UNSCANNABLE: { score: 5, action: 'quarantine' },
  ARCHIVE_LIMIT: { score: 5, action: 'quarantine' },
  OFFICE_CORRUPT: { score: 3, action: 'quarantine' },
  TYPE_MISMATCH: { score: 3 },
  // the MIME walk (src/inspect/mime/)
  MIME_UNPARSEABLE: { score: 5, action: 'quarantine' },
  MIME_AMBIGUOUS: { score: 3 },
  // containers and file types of the waves after macros (src/inspect/office/dangerous.ts)
  ARCHIVE_UNSUPPORTED: { score: 5, action: 'quarantine' },
  FILE_EXECUTABLE: { score: 10, action: 'quarantine' },
  FILE_INSTALLER: { score: 10, action: 'quarantine' },
  FILE_JAVA_ARCHIVE: { score: 10, action: 'quarantine' },
  FILE_SCRIPT: { score: 10, action: 'quarantine' },
  FILE_HTML_APPLICATION: { score: 10, action: 'quarantine' },
  FILE_CHM: { score: 10, action: 'quarantine' },
  FILE_SHORTCUT: { score: 10, action: 'quarantine' },
  FILE_DISK_IMAGE: { score: 5, action: 'quarantine' },
  ONENOTE_EMBEDDED_FILE: { score: 5, action: 'quarantine' },
  HTML_SMUGGLING: { score: 10, action: 'quarantine' },
  // reply-chain spoofing, identity and authentication (src/inspect/spoof/symbols.ts)
  ...SPOOF_SYMBOLS,
};

/** Reply-chain spoofing (src/inspect/spoof/): thread memory, authentication, score thresholds. */
const spoofSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** how long a relayed outbound thread, a learned name ↔ address binding and a sender's infrastructure are remembered */
    memoryTtl: duration.default(180 * 86_400_000),
    /** Redis key prefix of the thread memory */
    keyPrefix: z.string().default('{mailmoat:thread}:'),
    /** SPF, DKIM, DMARC, ARC of inbound mail (with mailauth) */
    authentication: z.boolean().default(true),
    /** prepend mailauth's Authentication-Results header to relayed mail (both front ends) */
    authenticationResults: z.boolean().default(false),
    /** lookalike domains of internal and known correspondents' domains (SPOOF_(REPLY_)LOOKALIKE_DOMAIN) */
    lookalike: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** sender domains never taken for lookalikes (the organisation's sister companies, say); subdomains included */
        trusted: z.array(domain).default([]),
      })
      .prefault({}),
    /** the spoof symbols' scores of one message add up to: SPOOF_SUSPECT / SPOOF_HIJACK */
    thresholds: z
      .strictObject({
        tag: z.number().nullable().default(4),
        quarantine: z.number().nullable().default(7),
      })
      .prefault({}),
  })
  .prefault({});

/** DNS for the authentication checks (src/inspect/spoof/dns.ts). */
const dnsSchema = z
  .strictObject({
    /** name servers by address, asked in turn; empty: the system's (/etc/resolv.conf) */
    servers: z
      .array(z.string().refine((s) => parseNameServer(s) !== null, 'a name server by IP address with an optional port, e.g. 127.0.0.1:53 or [::1]:5353'))
      .default([]),
    /** one query's bound, all servers together; past it AUTH_TEMPERROR and the checks go on */
    timeout: duration.refine((ms) => ms >= 1, 'at least 1ms').default(2000),
    cache: z
      .strictObject({
        /** answers kept, least recently used dropped first; 0: no cache */
        size: z.number().int().min(0).default(10_000),
        /** an answer is kept for its TTL, but at least minTtl and at most maxTtl */
        minTtl: duration.default(60_000),
        maxTtl: duration.default(3_600_000),
      })
      .refine((c) => c.minTtl <= c.maxTtl, { message: 'minTtl is longer than maxTtl', path: ['minTtl'] })
      .prefault({}),
  })
  .prefault({});

const address = z.string().regex(/^[^@\s]+@[^@\s]+$/, 'an address such as postmaster@example.com');

/** `HH:MM` (daily, local time) for quarantine.digest.schedule. */
export const DAILY_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** The recipients' digest of held mail (src/quarantine/digest.ts) and the links in it (src/console/tokens.ts). */
const digestSchema = z
  .strictObject({
    /** `serve` sends digests: every `24h` (a duration), or daily at `08:30` (local time); null: only `mailmoat quarantine digest` */
    schedule: z
      .union([
        z
          .string()
          .regex(DAILY_TIME)
          .transform((t) => ({ daily: t })),
        duration.refine((ms) => ms >= 1000, 'at least 1s').transform((ms) => ({ every: ms })),
      ])
      .nullable()
      .default(null),
    /** the console's public address; a link is `${baseUrl}/r/<token>` */
    baseUrl: z
      .string()
      .regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, 'an http:// or https:// URL without query, e.g. https://mail.example.com/mailmoat')
      .transform((u) => u.replace(/\/+$/, ''))
      .nullable()
      .default(null),
    /** the file holding the links' HMAC key (never the key itself here); `mailmoat quarantine digest --init-key` makes one */
    keyFile: z.string().min(1).nullable().default(null),
    /** how long a link works */
    linkTtl: duration.refine((ms) => ms >= 60_000, 'at least 1m').default(7 * 86_400_000),
    /** the digest's language, and per recipient domain (subdomains included) */
    language: z.enum(['en', 'ja']).default('en'),
    languages: z.record(domain, z.enum(['en', 'ja'])).default({}),
    /** the digest's sender; null: quarantine.notify.from */
    from: address.nullable().default(null),
  })
  .prefault({});

/** What a recipient may do with a held item by themselves: release their own copy, request a release from an admin, or nothing. */
export const RECIPIENT_RIGHTS = ['release', 'request', 'none'] as const;
export type RecipientRight = (typeof RECIPIENT_RIGHTS)[number];
const right = z.enum(RECIPIENT_RIGHTS);

/** The built-in rights by symbol (`PREFIX_*` covers a family); listed in policies/default.yaml. */
export const DEFAULT_RIGHTS: Record<string, RecipientRight> = {
  // macros and dangerous files: admins only
  OFFICE_MACRO: 'none',
  OFFICE_MACRO_AUTOEXEC: 'none',
  OFFICE_MACRO_SUSPICIOUS: 'none',
  OFFICE_XLM_MACRO: 'none',
  'FILE_*': 'none',
  HTML_SMUGGLING: 'none',
  ONENOTE_EMBEDDED_FILE: 'none',
  // what could not be scanned, and spoofing: on request
  OFFICE_ENCRYPTED_UNSCANNABLE: 'request',
  ARCHIVE_ENCRYPTED_UNSCANNABLE: 'request',
  ARCHIVE_LIMIT: 'request',
  ARCHIVE_UNSUPPORTED: 'request',
  OFFICE_CORRUPT: 'request',
  MIME_UNPARSEABLE: 'request',
  'SPOOF_*': 'request',
  'AUTH_*': 'request',
};

const rightsSchema = z
  .strictObject({
    /** a finding's category when neither symbols nor actions name it */
    default: right.default('request'),
    /** by symbol, or by family with a trailing `*`; an entry refines the built-in ones */
    symbols: z
      .record(z.string().regex(/^[A-Z][A-Z0-9_]*\*?$/, 'an upper-case symbol, or a prefix ending in * such as SPOOF_*'), right)
      .default({})
      .transform((given) => ({ ...DEFAULT_RIGHTS, ...given })),
    /** by the action verdict.symbols gives the finding's symbol (tag, quarantine...), for symbols not named above */
    actions: z.partialRecord(action, right).default({}),
  })
  .prefault({});

/** Recipients' release requests (src/quarantine/requests.ts). */
const requestsSchema = z
  .strictObject({
    /** who is told of a request; null: quarantine.notify.admin; with neither, requests are recorded (console, audit log) but nobody is mailed */
    admin: address.nullable().default(null),
    /** requests and self-releases per recipient per window; past it refused until the window ends */
    limit: z.number().int().min(1).default(10),
    window: duration.refine((ms) => ms >= 1000, 'at least 1s').default(3_600_000),
  })
  .prefault({});

/** Options that moved: the old key is refused with the new one named (src/policy/load.ts). */
export const MOVED_OPTIONS: Record<string, string> = {
  'spoof.dnsTimeout': 'dns.timeout',
};

/**
 * An exception drops the findings it matches (they stay in the log, marked excepted): for a
 * partner that legitimately sends macros, or a known business macro by the SHA-256 of its
 * normalised source. Every condition given must hold.
 */
const exception = z.strictObject({
  /** which symbols it applies to; all when absent */
  symbols: z.array(z.string().regex(/^[A-Z][A-Z0-9_]*$/)).optional(),
  /** envelope senders: full addresses or `@domain` */
  senders: z.array(z.string().min(2)).optional(),
  /** envelope recipients (every recipient must match): full addresses or `@domain` */
  recipients: z.array(z.string().min(2)).optional(),
  /** SHA-256 of normalised macro source, as findings and `mailmoat scan` show it */
  sha256: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256')).optional(),
  description: z.string().optional(),
});
export type PolicyException = z.infer<typeof exception>;

/** Outbound sender rates (src/rate/): what is counted per sender and what happens past a limit. */
export const RATE_METRICS = ['messages', 'externalRecipients', 'office', 'fromMismatch', 'macro', 'spoof'] as const;
export type RateMetric = (typeof RATE_METRICS)[number];
/** alert: log line (+ webhook) only; suspend: hold the sender until `mailmoat sender unsuspend` */
export const RATE_ACTIONS = ['alert', 'tag', 'quarantine', 'defer', 'suspend'] as const;
export type RateAction = (typeof RATE_ACTIONS)[number];
const rateThreshold = z.strictObject({
  metric: z.enum(RATE_METRICS),
  window: duration,
  /** the message that takes the count past this fires (limit 20: the 21st) */
  limit: z.number().int().min(0),
  action: z.enum(RATE_ACTIONS),
  description: z.string().optional(),
});
export type RateThreshold = z.infer<typeof rateThreshold>;
const rateSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    keys: z
      .array(z.enum(['envelopeSender', 'headerFrom', 'clientIp']))
      .min(1)
      .prefault(['envelopeSender', 'headerFrom']),
    windows: z
      .array(duration.refine((ms) => ms >= 100, 'at least 100ms'))
      .min(1)
      .max(8)
      .prefault(['10m', '1h', '24h']),
    distinctCap: z.number().int().min(1).default(1000),
    keyPrefix: z.string().default('mailmoat:rate:'),
    thresholds: z.array(rateThreshold).prefault([
      { metric: 'office', window: '1h', limit: 20, action: 'quarantine' },
      { metric: 'externalRecipients', window: '1h', limit: 200, action: 'alert' },
      { metric: 'fromMismatch', window: '1h', limit: 10, action: 'alert' },
      { metric: 'macro', window: '24h', limit: 3, action: 'alert' },
    ]),
    baseline: z
      .strictObject({
        action: z.enum(RATE_ACTIONS).nullable().default('alert'),
        period: duration.default(3_600_000),
        halfLife: duration.default(7 * 86_400_000),
        factor: z.number().min(1).default(5),
        floor: z.number().int().min(0).default(50),
      })
      .prefault({}),
    suspend: z
      .strictObject({
        action: z.enum(['defer', 'quarantine']).default('defer'),
        ttl: duration.default(30 * 86_400_000),
      })
      .prefault({}),
    alert: z
      .strictObject({
        webhook: z
          .string()
          .regex(/^https?:\/\//, 'an http:// or https:// URL')
          .nullable()
          .default(null),
        timeout: duration.default(2000),
      })
      .prefault({}),
    admin: z.strictObject({ socket: z.string().min(1).nullable().default(null) }).prefault({}),
  })
  .superRefine((rate, ctx) => {
    rate.thresholds.forEach((t, i) => {
      if (!rate.windows.includes(t.window)) {
        ctx.addIssue({ code: 'custom', path: ['thresholds', i, 'window'], message: 'not one of rate.windows' });
      }
    });
  })
  .prefault({});

export const policySchema = z.strictObject({
  listen: z.strictObject({ ...hostPort }).prefault({ host: '127.0.0.1', port: 10025 }),
  smtp: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  milter: z
    .strictObject({
      enabled: z.boolean().default(false),
      listen: z.string().regex(MILTER_LISTEN, 'inet:HOST:PORT or unix:/path, e.g. inet:127.0.0.1:10028').default('inet:127.0.0.1:10028'),
      quarantine: z.enum(['ours', 'mta-hold']).default('ours'),
      progressInterval: duration.default(10_000),
      /** open milter connections; past it a connection is refused with a 4xx at CONNECT */
      maxConnections: z.number().int().min(1).default(1000),
      /** open milter connections per peer address; null: no per-address limit */
      maxConnectionsPerAddress: z.number().int().min(1).nullable().default(null),
      /** a packet that has begun must be complete this long after its first byte (0: no bound) */
      packetTimeout: duration.default(60_000),
      /** from accepting a connection to the MTA's CONNECT event (0: no bound) */
      connectTimeout: duration.default(30_000),
    })
    .prefault({}),
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
      /** simultaneous connections from one client address (not the xforwardHosts); null: no limit */
      maxClientsPerIp: z.number().int().min(1).nullable().default(20),
      /** IPv6 clients count per network of this prefix length for maxClientsPerIp */
      clientIpv6Prefix: z.number().int().min(1).max(128).default(64),
      /** commands that lead to no message (NOOP, RSET, HELO..., refused ones) between two messages */
      maxJunkCommands: z.number().int().min(1).nullable().default(100),
      /** DATA may take timeouts.client plus 1 s per minDataRate bytes received (0: no floor) */
      minDataRate: byteSize.default(500),
      /** bytes of mail held in memory by the whole process: spooled bytes and messages under inspection; null: no bound */
      memoryBudget: byteSize.nullable().default(128 * 1024 * 1024),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      client: duration.default(60_000),
      /** one command line, from its first byte to its end (0: no bound) */
      command: duration.default(30_000),
      /** the whole DATA phase, from 354 to the final dot, whatever the rate (0: no bound) */
      data: duration.default(30 * 60_000),
      /** with every maxClients slot taken, a connection stalled this long gives its slot to a new client (0: never) */
      stalledWhenFull: duration.default(10_000),
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
      /** where RCPT TO:<postmaster> goes; null: postmaster@ the first internal domain that is not a wildcard */
      postmaster: mailbox.nullable().default(null),
    })
    .prefault({}),
  state: z
    .discriminatedUnion('backend', [
      z.strictObject({ backend: z.literal('memory') }),
      z
        .strictObject({
          backend: z.literal('redis'),
          url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
          failMode: z.enum(['open', 'closed']).default('open'),
          /** each Redis command's bound: past it the command fails (fail mode), never a hang */
          commandTimeout: duration.default(500),
          /** Sentinel: `host:port` of the sentinels; the URL then gives password, db and TLS */
          sentinels: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'host:port')).default([]),
          /** the master name the sentinels watch */
          sentinelName: z.string().min(1).default('mymaster'),
          /** Cluster: `host:port` of some cluster nodes; the URL then gives password and TLS */
          cluster: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'host:port')).default([]),
        })
        .refine((s) => !(s.sentinels.length && s.cluster.length), 'either sentinels or cluster, not both'),
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
  metrics: z
    .strictObject({
      /** where /metrics (Prometheus) and /healthz are served; null: not served */
      listen: z
        .strictObject({ ...hostPort })
        .nullable()
        .default(null),
    })
    .prefault({}),
  console: z
    .strictObject({
      /** where the web console listens (HTTP, or HTTPS with `tls`); null: no console */
      listen: z
        .strictObject({ ...hostPort })
        .nullable()
        .default(null),
      /** serve HTTPS with this certificate and key (PEM files); null: plain HTTP (behind a TLS proxy, or on loopback) */
      tls: z
        .strictObject({ cert: z.string().min(1), key: z.string().min(1) })
        .nullable()
        .default(null),
      /** the local accounts (`mailmoat console user add`): scrypt hashes and roles */
      users: z.string().min(1).default('var/console/users.json'),
      /** the key that signs session cookies; created (mode 0600) when missing; consoles behind one name share it */
      secretFile: z.string().min(1).default('var/console/secret'),
      /** how long a login lasts */
      sessionTtl: duration.default(8 * 3_600_000),
      /** failed or not, login attempts from one address within `window`; past them: 429 until the window ends */
      loginLimit: z.strictObject({ attempts: z.number().int().min(1).default(10), window: duration.default(15 * 60_000) }).prefault({}),
      /** reverse proxies in front of the console: their X-Forwarded-For/-Proto are believed, and only they may send the SSO header */
      proxies: z.array(cidr).default([]),
      sso: z
        .strictObject({
          /** the header a proxy sets to the signed-in user's name (e.g. X-Remote-User); null: no SSO */
          header: z
            .string()
            .regex(/^[!-9;-~]+$/, 'a header field name such as X-Remote-User')
            .nullable()
            .default(null),
          /** the role of an SSO user who has no local account (a local account's role wins) */
          role: z.enum(['admin', 'auditor']).default('auditor'),
        })
        .prefault({}),
      /** the overview's counters in the state backend (Redis keys start with this) */
      keyPrefix: z.string().default('{mailmoat:console}:'),
    })
    .prefault({})
    .refine((c) => c.sso.header === null || c.proxies.length > 0, {
      message: 'sso.header needs console.proxies: the addresses of the proxies allowed to send it',
      path: ['sso', 'header'],
    }),
  quarantine: z
    .strictObject({
      dir: z.string().min(1).default('var/quarantine'),
      /** `mailmoat quarantine purge` removes items received longer ago than this; 0 keeps them forever */
      retention: duration.default(30 * 86_400_000),
      release: z
        .strictObject({
          /** where `mailmoat quarantine release` delivers; null: the policy's `downstream` */
          downstream: z
            .strictObject({ ...hostPort })
            .nullable()
            .default(null),
          /** header prepended to a released message (who, when, which id); null: none */
          header: z
            .string()
            .regex(/^[!-9;-~]+$/, 'a header field name such as X-Mailmoat-Released')
            .nullable()
            .default('X-Mailmoat-Released'),
        })
        .prefault({}),
      notify: z
        .strictObject({
          /** none; recipients (only those in internalDomains: never backscatter outside); admin */
          to: z.enum(['none', 'recipients', 'admin']).default('none'),
          /** the admin address, with `to: admin` */
          admin: z
            .string()
            .regex(/^[^@\s]+@[^@\s]+$/, 'an address such as postmaster@example.com')
            .nullable()
            .default(null),
          /** the notice's sender */
          from: z
            .string()
            .regex(/^[^@\s]+@[^@\s]+$/, 'an address such as postmaster@example.com')
            .default('postmaster@localhost'),
        })
        .prefault({})
        .refine((n) => n.to !== 'admin' || n.admin !== null, { message: 'notify.to admin needs notify.admin', path: ['admin'] }),
      digest: digestSchema,
      rights: rightsSchema,
      requests: requestsSchema,
    })
    .prefault({}),
  office: z
    .strictObject({
      maxDepth: z.number().int().min(1).max(64).default(8),
      maxEntries: z.number().int().min(1).default(10_000),
      maxBytes: byteSize.default(256 * 1024 * 1024),
      maxRatio: z.number().min(1).default(200),
      maxPasswordAttempts: z.number().int().min(0).default(20),
      timeout: duration.default(20_000),
      /** how long an encrypted item held as unscannable waits for a separate password mail, and such a mail for its item (0: off) */
      passwordWait: duration.default(3_600_000),
      /** an item a separate password mail opens and finds clean is released by itself (else it stays held, its findings updated) */
      passwordRelease: z.boolean().default(true),
    })
    .prefault({}),
  verdict: z
    .strictObject({
      thresholds: z
        .strictObject({
          tag: z.number().nullable().default(null),
          quarantine: z.number().nullable().default(null),
          defer: z.number().nullable().default(null),
          reject: z.number().nullable().default(null),
        })
        .prefault({}),
      symbols: z
        .record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'an upper-case symbol'), z.strictObject({ score: z.number().optional(), action: action.optional() }))
        .default({})
        // an entry refines the built-in one for its symbol; symbols not named keep their defaults
        .transform((given) => {
          const merged = { ...DEFAULT_SYMBOLS };
          for (const [symbol, entry] of Object.entries(given)) merged[symbol] = { ...DEFAULT_SYMBOLS[symbol], ...entry };
          return merged;
        }),
      exceptions: z.array(exception).default([]),
    })
    .prefault({}),
  rate: rateSchema,
  spoof: spoofSchema,
  dns: dnsSchema,
  log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).prefault({}),
});

export type Policy = z.infer<typeof policySchema>;
export type HeaderRule = z.infer<typeof headerRule>;
export type SizeRule = z.infer<typeof sizeRule>;
