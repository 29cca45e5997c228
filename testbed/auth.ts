/** Password hashing (scrypt, per-account salt) and bearer tokens (stored only as SHA-256). */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export interface PasswordHash {
  salt: Buffer;
  hash: Buffer;
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16);
  return { salt, hash: await scryptAsync(password, salt, 32) };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const hash = await scryptAsync(password, stored.salt, 32);
  return timingSafeEqual(hash, stored.hash);
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
