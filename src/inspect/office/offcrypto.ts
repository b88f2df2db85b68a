// [MS-OFFCRYPTO] decryption with a known password, enough to look inside documents "protected"
// by a well-known or announced password: ECMA-376 Agile (4.4) and Standard (x.2, AES) encryption
// of OOXML packages (EncryptionInfo + EncryptedPackage), and RC4 / RC4 CryptoAPI encryption of
// BIFF8 workbooks (FILEPASS). Each function verifies the password with the stored verifier before
// decrypting, so a wrong password costs one key derivation, not a package decryption. Each
// derivation goes through the message's key cache (key-cache.ts): one per (salt, password) per message.
import { createDecipheriv, createHash, hash } from 'node:crypto';
import { sha1Spin } from './sha1-spin.js';
import { sha512Spin } from './sha512-spin.js';
import type { Derived } from './key-cache.js';
import type { ScanBudget } from './types.js';

export const DEFAULT_PASSWORDS = ['VelvetSweatshop', '/01Hannes Ruescher/01'];

/** Agile spin counts above this are treated as undecryptable (each password would cost seconds). */
const MAX_SPIN = 500_000;

export type EncryptionInfo =
  | { kind: 'agile'; keyData: AgileKeyData; key: AgileEncryptedKey }
  | { kind: 'standard'; algId: number; keyBits: number; salt: Buffer; verifier: Buffer; verifierHash: Buffer; verifierHashSize: number }
  | { kind: 'unsupported'; reason: string };

interface AgileKeyData {
  saltValue: Buffer;
  blockSize: number;
  keyBits: number;
  hashAlgorithm: string;
  cipherAlgorithm: string;
  cipherChaining: string;
}
interface AgileEncryptedKey extends AgileKeyData {
  spinCount: number;
  encryptedVerifierHashInput: Buffer;
  encryptedVerifierHashValue: Buffer;
  encryptedKeyValue: Buffer;
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(tag);
  return m?.[1];
}

function hashName(alg: string): string | undefined {
  const a = alg.toUpperCase().replace(/-/g, '');
  return ({ SHA1: 'sha1', SHA256: 'sha256', SHA384: 'sha384', SHA512: 'sha512', MD5: 'md5' } as Record<string, string>)[a];
}

function keyDataOf(tag: string): AgileKeyData {
  return {
    saltValue: Buffer.from(attr(tag, 'saltValue') ?? '', 'base64'),
    blockSize: Number(attr(tag, 'blockSize') ?? 16),
    keyBits: Number(attr(tag, 'keyBits') ?? 0),
    hashAlgorithm: attr(tag, 'hashAlgorithm') ?? '',
    cipherAlgorithm: attr(tag, 'cipherAlgorithm') ?? '',
    cipherChaining: attr(tag, 'cipherChaining') ?? '',
  };
}

export function parseEncryptionInfo(buf: Buffer): EncryptionInfo {
  if (buf.length < 8) return { kind: 'unsupported', reason: 'EncryptionInfo too short' };
  const major = buf.readUInt16LE(0);
  const minor = buf.readUInt16LE(2);
  if (major === 4 && minor === 4) {
    const xml = buf.subarray(8).toString('utf8');
    const kd = /<(?:\w+:)?keyData\b[^>]*>/.exec(xml)?.[0];
    const ek = /<(?:\w+:)?encryptedKey\b[^>]*\bspinCount=[^>]*>/.exec(xml)?.[0];
    if (!kd || !ek) return { kind: 'unsupported', reason: 'agile: no password key encryptor' };
    const key = keyDataOf(ek);
    return {
      kind: 'agile',
      keyData: keyDataOf(kd),
      key: {
        ...key,
        spinCount: Number(attr(ek, 'spinCount') ?? 0),
        encryptedVerifierHashInput: Buffer.from(attr(ek, 'encryptedVerifierHashInput') ?? '', 'base64'),
        encryptedVerifierHashValue: Buffer.from(attr(ek, 'encryptedVerifierHashValue') ?? '', 'base64'),
        encryptedKeyValue: Buffer.from(attr(ek, 'encryptedKeyValue') ?? '', 'base64'),
      },
    };
  }
  if ((major === 2 || major === 3 || major === 4) && minor === 2) {
    const headerSize = buf.readUInt32LE(8);
    const h = 12;
    if (buf.length < h + headerSize + 4 + 16 + 16 + 4 + 20) return { kind: 'unsupported', reason: 'standard: truncated' };
    const algId = buf.readUInt32LE(h + 8);
    const keyBits = buf.readUInt32LE(h + 16);
    const v = h + headerSize;
    const saltSize = buf.readUInt32LE(v);
    const salt = buf.subarray(v + 4, v + 4 + saltSize);
    const verifier = buf.subarray(v + 4 + saltSize, v + 20 + saltSize);
    const verifierHashSize = buf.readUInt32LE(v + 20 + saltSize);
    const verifierHash = buf.subarray(v + 24 + saltSize);
    if (algId !== 0x660e && algId !== 0x660f && algId !== 0x6610) return { kind: 'unsupported', reason: `standard: algId 0x${algId.toString(16)}` };
    return { kind: 'standard', algId, keyBits, salt, verifier, verifierHash, verifierHashSize };
  }
  return { kind: 'unsupported', reason: `EncryptionInfo version ${major}.${minor}` };
}

function h(alg: string, ...parts: Buffer[]): Buffer {
  const x = createHash(alg);
  for (const p of parts) x.update(p);
  return x.digest();
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function fit(b: Buffer, len: number, pad: number): Buffer {
  if (b.length >= len) return b.subarray(0, len);
  return Buffer.concat([b, Buffer.alloc(len - b.length, pad)]);
}

function aes(mode: 'cbc' | 'ecb', key: Buffer, iv: Buffer | null, data: Buffer): Buffer {
  const d = createDecipheriv(`aes-${key.length * 8}-${mode}`, key, iv);
  d.setAutoPadding(false);
  const whole = data.subarray(0, data.length - (data.length % 16));
  return Buffer.concat([d.update(whole), d.final()]);
}

const BLK_VERIFIER_INPUT = Buffer.from([0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79]);
const BLK_VERIFIER_VALUE = Buffer.from([0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e]);
const BLK_KEY = Buffer.from([0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6]);

/**
 * The iterated hash of [MS-OFFCRYPTO] 2.3.4.11: H0 = H(salt + password), Hn = H(iterator + Hn-1).
 * SHA-512 (Agile's default) and SHA-1 (Standard, older Agile) each in one WebAssembly loop
 * (./sha512-spin.ts, ./sha1-spin.ts); the other hashes Agile allows one-shot into one reused buffer
 * (a third faster than a Hash object per round). Null when the deadline passes mid-way.
 */
function spin(alg: string, salt: Buffer, password: string, spinCount: number, deadline: number): Buffer | null {
  const first = h(alg, salt, Buffer.from(password, 'utf16le'));
  if (alg === 'sha512') return sha512Spin(first, spinCount, deadline);
  if (alg === 'sha1') return sha1Spin(first, spinCount, deadline);
  const round = Buffer.alloc(4 + first.length);
  first.copy(round, 4);
  for (let i = 0; i < spinCount; i++) {
    if ((i & 0x3fff) === 0 && Date.now() > deadline) return null;
    round.writeUInt32LE(i, 0);
    hash(alg, round, 'buffer').copy(round, 4);
  }
  return round.subarray(4);
}

/** Agile: the package key, null when the password is wrong/unsupported, or why no derivation was made. */
function agileKey(info: Extract<EncryptionInfo, { kind: 'agile' }>, password: string, budget: ScanBudget): Derived {
  const k = info.key;
  const alg = hashName(k.hashAlgorithm);
  if (!alg || k.cipherAlgorithm.toUpperCase() !== 'AES' || k.cipherChaining !== 'ChainingModeCBC') return null;
  if (!(k.spinCount >= 0 && k.spinCount <= MAX_SPIN) || ![128, 192, 256].includes(k.keyBits)) return null;
  const hv = budget.keys.derive({ alg, spinCount: k.spinCount, salt: k.saltValue, password }, budget, () =>
    spin(alg, k.saltValue, password, k.spinCount, budget.deadline),
  );
  if (!Buffer.isBuffer(hv)) return hv;
  const derive = (blk: Buffer) => fit(h(alg, hv, blk), k.keyBits / 8, 0x36);
  const iv = fit(k.saltValue, k.blockSize, 0x36);
  const input = aes('cbc', derive(BLK_VERIFIER_INPUT), iv, k.encryptedVerifierHashInput).subarray(0, k.saltValue.length);
  const value = aes('cbc', derive(BLK_VERIFIER_VALUE), iv, k.encryptedVerifierHashValue);
  const expect = h(alg, input);
  if (!value.subarray(0, expect.length).equals(expect)) return null;
  return aes('cbc', derive(BLK_KEY), iv, k.encryptedKeyValue).subarray(0, info.keyData.keyBits / 8);
}

function agileDecrypt(info: Extract<EncryptionInfo, { kind: 'agile' }>, key: Buffer, pkg: Buffer, maxBytes: number): Buffer | null {
  const kd = info.keyData;
  const alg = hashName(kd.hashAlgorithm);
  if (!alg || kd.cipherAlgorithm.toUpperCase() !== 'AES' || pkg.length < 8) return null;
  const size = Number(pkg.readBigUInt64LE(0));
  if (size > maxBytes) return null;
  const body = pkg.subarray(8);
  const out: Buffer[] = [];
  for (let i = 0, off = 0; off < body.length && off < size; i++, off += 4096) {
    const iv = fit(h(alg, kd.saltValue, u32(i)), kd.blockSize, 0x36);
    out.push(aes('cbc', key, iv, body.subarray(off, off + 4096)));
  }
  return Buffer.concat(out).subarray(0, size);
}

function standardKey(info: Extract<EncryptionInfo, { kind: 'standard' }>, password: string, budget: ScanBudget): Derived {
  const hv = budget.keys.derive({ alg: 'sha1', spinCount: 50000, salt: info.salt, password }, budget, () =>
    spin('sha1', info.salt, password, 50000, budget.deadline),
  );
  if (!Buffer.isBuffer(hv)) return hv;
  const hfinal = h('sha1', hv, u32(0));
  const b1 = Buffer.alloc(64, 0x36);
  const b2 = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < hfinal.length; i++) {
    b1[i] ^= hfinal[i];
    b2[i] ^= hfinal[i];
  }
  const key = Buffer.concat([h('sha1', b1), h('sha1', b2)]).subarray(0, info.keyBits / 8);
  if (![16, 24, 32].includes(key.length)) return null;
  const verifier = aes('ecb', key, null, info.verifier);
  const vh = aes('ecb', key, null, info.verifierHash.subarray(0, 32));
  return vh.subarray(0, 20).equals(h('sha1', verifier)) ? key : null;
}

export interface DecryptResult {
  /** the decrypted package (a zip) */
  data?: Buffer;
  password?: string;
  /** why nothing was decrypted */
  reason?: string;
}

const WHY_NOT: Record<'exhausted' | 'deferred', string> = { exhausted: 'password attempts exhausted', deferred: 'left for the next turn' };

/**
 * Tries `passwords` in order on an encrypted OOXML package, each new key derivation spending one of
 * the budget's password attempts, stopping at its deadline.
 */
export function decryptOoxml(encryptionInfo: Buffer, encryptedPackage: Buffer, passwords: string[], budget: ScanBudget, maxBytes: number): DecryptResult {
  const info = parseEncryptionInfo(encryptionInfo);
  if (info.kind === 'unsupported') return { reason: info.reason };
  for (const pw of passwords) {
    if (Date.now() > budget.deadline) return { reason: 'time budget exhausted' };
    try {
      const key = info.kind === 'agile' ? agileKey(info, pw, budget) : standardKey(info, pw, budget);
      if (key === 'exhausted' || key === 'deferred') return { reason: WHY_NOT[key] };
      if (!key) continue;
      if (info.kind === 'agile') {
        const data = agileDecrypt(info, key, encryptedPackage, maxBytes);
        return data ? { data, password: pw } : { reason: 'package too large or malformed' };
      }
      if (encryptedPackage.length < 8) return { reason: 'package truncated' };
      const size = Number(encryptedPackage.readBigUInt64LE(0));
      if (size > maxBytes) return { reason: 'package too large' };
      return { data: aes('ecb', key, null, encryptedPackage.subarray(8)).subarray(0, size), password: pw };
    } catch {
      return { reason: 'malformed encryption parameters' };
    }
  }
  return { reason: Date.now() > budget.deadline ? 'time budget exhausted' : 'password unknown' };
}

// ---- RC4 for BIFF8 FILEPASS -------------------------------------------------------------------

export function rc4(key: Buffer, data: Buffer): Buffer {
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i] + key[i % key.length]) & 0xff;
    const t = s[i];
    s[i] = s[j]!;
    s[j] = t;
  }
  const out = Buffer.alloc(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + s[i]) & 0xff;
    const t = s[i];
    s[i] = s[j]!;
    s[j] = t;
    out[n] = data[n] ^ s[(s[i] + s[j]) & 0xff];
  }
  return out;
}

type BlockKey = (block: number) => Buffer;

/** FILEPASS record data → a per-1024-byte-block key function for the password, or null. */
function biffKey(filepass: Buffer, password: string): BlockKey | null | 'unsupported' {
  if (filepass.length < 6) return 'unsupported';
  const type = filepass.readUInt16LE(0);
  if (type !== 1) return 'unsupported'; // XOR obfuscation
  const major = filepass.readUInt16LE(2);
  const minor = filepass.readUInt16LE(4);
  const pw = Buffer.from(password, 'utf16le');
  if (major === 1 && minor === 1) {
    if (filepass.length < 6 + 48) return 'unsupported';
    const salt = filepass.subarray(6, 22);
    const h0 = h('md5', pw).subarray(0, 5);
    const inter = h('md5', Buffer.concat(Array.from({ length: 16 }, () => Buffer.concat([h0, salt])))).subarray(0, 5);
    const key: BlockKey = (b) => h('md5', inter, u32(b));
    const dec = rc4(key(0), filepass.subarray(22, 54));
    return h('md5', dec.subarray(0, 16)).equals(dec.subarray(16, 32)) ? key : null;
  }
  if ((major === 2 || major === 3 || major === 4) && minor === 2) {
    const headerSize = filepass.readUInt32LE(10);
    const hdr = 14;
    if (filepass.length < hdr + headerSize + 4 + 16 + 16 + 4 + 20) return 'unsupported';
    let keyBits = filepass.readUInt32LE(hdr + 16) || 40;
    if (keyBits < 40 || keyBits > 128) keyBits = 40;
    const v = hdr + headerSize;
    const saltSize = filepass.readUInt32LE(v);
    const salt = filepass.subarray(v + 4, v + 4 + saltSize);
    const h0 = h('sha1', salt, pw);
    const key: BlockKey = (b) => {
      const k = h('sha1', h0, u32(b));
      return keyBits === 40 ? Buffer.concat([k.subarray(0, 5), Buffer.alloc(11)]) : k.subarray(0, keyBits / 8);
    };
    const enc = Buffer.concat([filepass.subarray(v + 4 + saltSize, v + 20 + saltSize), filepass.subarray(v + 24 + saltSize, v + 44 + saltSize)]);
    const dec = rc4(key(0), enc);
    return h('sha1', dec.subarray(0, 16)).equals(dec.subarray(16, 36)) ? key : null;
  }
  return 'unsupported';
}

/** Records whose data stays in clear after FILEPASS ([MS-XLS] 2.2.10). */
const CLEAR_RECORDS = new Set([0x0809, 0x002f, 0x0194, 0x0195, 0x00e1, 0x0196, 0x0138]);

/**
 * Decrypts a BIFF8 `Workbook` stream encrypted with RC4 / RC4 CryptoAPI. Its derivation is one MD5
 * or SHA-1: not cached, each try spends one of the budget's password attempts.
 */
export function decryptBiff(stream: Buffer, filepassPos: number, filepass: Buffer, passwords: string[], budget: ScanBudget): DecryptResult {
  for (const pw of passwords) {
    if (budget.passwordAttemptsLeft <= 0) return { reason: 'password attempts exhausted' };
    if (Date.now() > budget.deadline) return { reason: 'time budget exhausted' };
    const key = biffKey(filepass, pw);
    if (key === 'unsupported') return { reason: 'XOR obfuscation or unknown FILEPASS' };
    budget.passwordAttemptsLeft--;
    if (!key) continue;
    const plain = Buffer.alloc(stream.length);
    for (let b = 0; b * 1024 < stream.length; b++) {
      const off = b * 1024;
      rc4(key(b), stream.subarray(off, off + 1024)).copy(plain, off);
    }
    // Headers and some records were never encrypted: put the original bytes back.
    for (let pos = 0; pos + 4 <= stream.length;) {
      const id = stream.readUInt16LE(pos);
      const len = stream.readUInt16LE(pos + 2);
      stream.copy(plain, pos, pos, pos + 4);
      const end = Math.min(pos + 4 + len, stream.length);
      if (CLEAR_RECORDS.has(id)) stream.copy(plain, pos + 4, pos + 4, end);
      else if (id === 0x0085) stream.copy(plain, pos + 4, pos + 4, Math.min(pos + 8, end));
      pos += 4 + len;
    }
    // Everything up to and including FILEPASS is clear.
    stream.copy(plain, 0, 0, Math.min(filepassPos + 4 + filepass.length, stream.length));
    return { data: plain, password: pw };
  }
  return { reason: 'password unknown' };
}
