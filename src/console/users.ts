// The console's local accounts: one JSON file (console.users, mode 0600) written by
// `mailmoat console user add|passwd|remove` and read by the console (again whenever it changes, so a
// removed user or a new password takes effect at once: sessions issued before `changed` are void).
//
// Passwords are hashed with scrypt from node:crypto: memory-hard like argon2 (RFC 7914), with no
// native add-on to build or download, on every platform Node runs on. The parameters are stored in
// each hash, so they can be raised later without breaking old ones.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export type Role = 'admin' | 'auditor';
export const ROLES: Role[] = ['admin', 'auditor'];

/** A user name is also the operator in the audit log and the release header: short, printable, no `;`. */
export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 };

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function maxmem(N: number, r: number): number {
  return 128 * N * r * 2;
}

/** `scrypt$N$r$p$salt$key` (salt and key in base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keylen } = SCRYPT;
  const key = await scrypt(password, salt, keylen, { N, r, p, maxmem: maxmem(N, r) });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const N = Number(n);
  const R = Number(r);
  const expected = Buffer.from(key, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N, r: R, p: Number(p), maxmem: maxmem(N, R) });
  return timingSafeEqual(actual, expected);
}

const userSchema = z.object({ role: z.enum(['admin', 'auditor']), hash: z.string(), created: z.string(), changed: z.string() });
const fileSchema = z.object({ users: z.record(z.string().regex(USER_NAME), userSchema) });

export type UserRecord = z.infer<typeof userSchema>;

export class UsersFileError extends Error {}

/** The accounts file, read again whenever it is replaced. */
export class UserFile {
  private cached: { stamp: string; users: Record<string, UserRecord> } | undefined;

  constructor(readonly file: string) {}

  /** Every account; none when the file does not exist yet. Throws UsersFileError naming the file when it is corrupt. */
  read(): Record<string, UserRecord> {
    // every write renames a new file into place: a new inode, whatever the mtime's resolution
    let stamp: string;
    try {
      const info = statSync(this.file);
      stamp = `${info.ino}:${info.mtimeMs}:${info.size}`;
    } catch {
      return {};
    }
    if (this.cached?.stamp === stamp) return this.cached.users;
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      throw new UsersFileError(`${this.file}: ${(err as Error).message}`);
    }
    const parsed = fileSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new UsersFileError(`${this.file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
    }
    this.cached = { stamp, users: parsed.data.users };
    return parsed.data.users;
  }

  get(name: string): UserRecord | undefined {
    const users = this.read();
    return Object.hasOwn(users, name) ? users[name] : undefined;
  }

  /** Adds or replaces an account (a new password voids the user's sessions). */
  async set(name: string, role: Role, password: string): Promise<void> {
    if (!USER_NAME.test(name)) throw new UsersFileError(`invalid user name ${JSON.stringify(name)}: letters, digits and . _ @ + -, at most 64`);
    const users = { ...this.read() };
    const now = new Date().toISOString();
    users[name] = { role, hash: await hashPassword(password), created: users[name]?.created ?? now, changed: now };
    this.write(users);
  }

  setRole(name: string, role: Role): void {
    const users = { ...this.read() };
    if (!Object.hasOwn(users, name)) throw new UsersFileError(`no user ${name} in ${this.file}`);
    users[name] = { ...users[name], role, changed: new Date().toISOString() };
    this.write(users);
  }

  remove(name: string): void {
    const users = { ...this.read() };
    if (!Object.hasOwn(users, name)) throw new UsersFileError(`no user ${name} in ${this.file}`);
    delete users[name];
    this.write(users);
  }

  private write(users: Record<string, UserRecord>): void {
    mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ users }, null, 2) + '\n', { mode: 0o600 });
    renameSync(temp, this.file);
    this.cached = undefined;
  }
}
