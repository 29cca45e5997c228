/**
 * Admin token check. The configured token (SILENTDROP_ADMIN_TOKEN or the data folder's
 * admin-token file) works until a rotation retires it; rotated tokens live as keyed
 * hashes in the database (db/fleet.ts), so every collector on one database agrees.
 */
import type { FastifyRequest } from 'fastify';
import { adminTokenInForce, adminTokenRetired } from '../db/fleet.ts';
import type { Db } from '../db/open.ts';
import { SdError } from '../errors.ts';
import { keyedHash, safeEqual } from '../secrets.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Keyed hash of the admin token this request used (set by the admin auth hook). */
    adminTokenHash: string | null;
  }
}

export function bearerToken(req: FastifyRequest): string {
  const auth = req.headers.authorization;
  return typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
}

/** Whether `token` is an admin token in force now; its keyed hash when it is. */
export async function checkAdminToken(
  db: Db,
  opts: { adminToken: string; hashKey: Buffer },
  token: string,
  now: Date,
): Promise<string | null> {
  if (!token || token.length > 512) return null;
  const hash = keyedHash(opts.hashKey, token);
  if (safeEqual(token, opts.adminToken)) return (await adminTokenRetired(db, hash, now)) ? null : hash;
  return (await adminTokenInForce(db, hash, now)) ? hash : null;
}

export function adminAuthHook(db: Db, opts: { adminToken: string; hashKey: Buffer; now: () => Date }) {
  return async function verifyAdmin(req: FastifyRequest): Promise<void> {
    const hash = await checkAdminToken(db, opts, bearerToken(req), opts.now());
    if (!hash) {
      throw new SdError('SD_ERR_ADMIN_TOKEN', 'authorization: a valid "Bearer <admin token>" is required');
    }
    req.adminTokenHash = hash;
  };
}
