// Signed recipient links: a token names one quarantined item, one recipient and an expiry, and is
// signed with HMAC-SHA256 under a key kept in a file of its own (quarantine.digest.keyFile), never in
// the policy. Whoever holds a token may act as that recipient on that item only, until it expires.
//
// Form (URL-safe, no padding): `1.<ULID id>.<expiry, seconds since 1970 in base 36>.<recipient,
// base64url of UTF-8>.<HMAC, base64url of 32 bytes>`. The MAC covers a context string and the first
// four fields. Every field must be in its one canonical encoding (base64url has spare bits in its
// last character; a token that differs from the signed one only there is refused), so a token has
// exactly one spelling.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { QUARANTINE_ID } from '../quarantine/store.js';

/** What a token says. */
export interface RecipientClaim {
  /** quarantine id (a ULID) */
  id: string;
  /** the envelope recipient, as in the item's RCPT TO */
  recipient: string;
  /** ms since 1970; the token is refused from this instant on (second precision) */
  expiresAt: number;
}

/** The outcome of verifying a token. Only `ok` may be acted on; `expired` is signed, so its claim is genuine but stale. */
export type TokenCheck =
  ({ status: 'ok' } & RecipientClaim) | ({ status: 'expired' } & RecipientClaim) | { status: 'bad-signature' } | { status: 'malformed'; reason: string };

/** Smallest key accepted: 256 bits, the HMAC-SHA256 output size. */
export const MIN_KEY_BYTES = 32;
const VERSION = '1';
const CONTEXT = 'mailmoat recipient link v1\n';
const MAC_BYTES = 32;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** The key file is missing, unreadable, too short or open to everyone; the message names the file. */
export class TokenKeyError extends Error {
  override name = 'TokenKeyError';
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(CONTEXT).update(payload).digest();
}

/** A token for `claim`; the recipient is kept exactly as given. */
export function createRecipientToken(key: Buffer, claim: RecipientClaim): string {
  if (!QUARANTINE_ID.test(claim.id)) throw new Error(`not a quarantine id: ${JSON.stringify(claim.id)}`);
  if (!claim.recipient) throw new Error('a recipient token needs a recipient');
  const expires = Math.ceil(claim.expiresAt / 1000);
  if (!Number.isSafeInteger(expires) || expires <= 0) throw new Error(`bad expiry ${claim.expiresAt}`);
  const payload = [VERSION, claim.id, expires.toString(36), Buffer.from(claim.recipient, 'utf8').toString('base64url')].join('.');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

/**
 * Checks a token: malformed (not a token of this form), bad-signature (altered, or another key),
 * expired (genuine, past its expiry), or ok. The MAC is compared in constant time.
 */
export function verifyRecipientToken(key: Buffer, token: string, now: number = Date.now()): TokenCheck {
  if (typeof token !== 'string' || token.length > 2048) return { status: 'malformed', reason: 'not a token' };
  const fields = token.split('.');
  if (fields.length !== 5) return { status: 'malformed', reason: `${fields.length} fields, expected 5` };
  const [version, id, expiryText, recipientText, macText] = fields;
  if (version !== VERSION) return { status: 'malformed', reason: `unknown version ${JSON.stringify(version.slice(0, 8))}` };
  if (!QUARANTINE_ID.test(id)) return { status: 'malformed', reason: 'not a quarantine id' };
  if (!/^[1-9a-z][0-9a-z]{0,10}$/.test(expiryText)) return { status: 'malformed', reason: 'bad expiry' };
  const recipient = canonicalBase64url(recipientText);
  if (!recipient) return { status: 'malformed', reason: 'bad recipient encoding' };
  const recipientString = recipient.toString('utf8');
  if (!Buffer.from(recipientString, 'utf8').equals(recipient)) return { status: 'malformed', reason: 'recipient is not UTF-8' };
  const given = canonicalBase64url(macText);
  if (!given || given.length !== MAC_BYTES) return { status: 'malformed', reason: 'bad signature encoding' };
  const expected = mac(key, fields.slice(0, 4).join('.'));
  if (!timingSafeEqual(given, expected)) return { status: 'bad-signature' };
  const claim = { id, recipient: recipientString, expiresAt: parseInt(expiryText, 36) * 1000 };
  return now >= claim.expiresAt ? { status: 'expired', ...claim } : { status: 'ok', ...claim };
}

/** The bytes of a base64url text, or undefined unless that text is their one canonical spelling. */
function canonicalBase64url(text: string): Buffer | undefined {
  if (!text || !B64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

/**
 * Reads the key: the file's bytes with surrounding white space trimmed (so `openssl rand -base64 48
 * > FILE` works as well as `--init-key`). Refused, naming the file, when it is missing, unreadable,
 * shorter than MIN_KEY_BYTES, or readable or writable by every user.
 */
export async function readTokenKey(file: string | null | undefined): Promise<Buffer> {
  if (!file) {
    throw new TokenKeyError(
      'quarantine.digest.keyFile is not set: recipient links need a key file (create one with `mailmoat quarantine digest --init-key`)',
      '',
    );
  }
  let bytes: Buffer;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new TokenKeyError(`link key file ${file} is not a regular file`, file);
    if (info.mode & 0o007) {
      throw new TokenKeyError(`link key file ${file} is open to every user (mode ${(info.mode & 0o777).toString(8)}): chmod 600 ${file}`, file);
    }
    bytes = await readFile(file);
  } catch (err) {
    if (err instanceof TokenKeyError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (create it with `mailmoat quarantine digest --init-key`)' : '';
    throw new TokenKeyError(`link key file ${file} cannot be read: ${code ?? (err as Error).message}${hint}`, file);
  }
  const key = trim(bytes);
  if (key.length < MIN_KEY_BYTES) {
    throw new TokenKeyError(
      `link key file ${file} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed (e.g. \`openssl rand -base64 48 > ${file}\`)`,
      file,
    );
  }
  return key;
}

function trim(bytes: Buffer): Buffer {
  let start = 0;
  let end = bytes.length;
  const space = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
  while (start < end && space(bytes[start])) start++;
  while (end > start && space(bytes[end - 1])) end--;
  return bytes.subarray(start, end);
}

/** Creates a new key file (48 random bytes, base64url, mode 0600); never overwrites one. */
export async function initTokenKey(file: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new TokenKeyError(`link key file ${file} already exists; remove it first to make a new key (every link sent so far stops working)`, file);
    }
    throw new TokenKeyError(`link key file ${file} cannot be created: ${code ?? (err as Error).message}`, file);
  }
  try {
    await handle.write(randomBytes(48).toString('base64url') + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}
