/**
 * Research reads under a statement timeout: each runs in its own read-only transaction
 * that begins with `SET LOCAL statement_timeout`, so one expensive query (or one stuck
 * behind a lock) cannot hold a server connection for long, and the setting never leaks
 * to the pooled connection's next user.
 *
 * Embedded PGlite runs queries synchronously inside its WebAssembly Postgres, which has
 * no timer signal to cancel a statement: it accepts the setting and ignores it (a
 * PGlite collector is the small, single-machine setup; a public collector runs on a
 * server, docs/errors.md SD_ERR_QUERY_TIMEOUT).
 */
import { sql } from 'drizzle-orm';
import type { Db, Tx } from './open.ts';

/** Postgres SQLSTATE of a statement cancelled by statement_timeout (or a cancel request). */
const QUERY_CANCELED = '57014';

export async function withStatementTimeout<T>(
  db: Db,
  timeoutMs: number,
  read: (tx: Tx) => Promise<T>,
): Promise<T> {
  const ms = Math.max(1, Math.floor(timeoutMs));
  return db.transaction(
    async (tx) => {
      // An integer literal, never client input: SET does not take bound parameters.
      await tx.execute(sql.raw(`set local statement_timeout = ${ms}`));
      return read(tx);
    },
    { accessMode: 'read only' },
  );
}

/** True for an error (or one it wraps: drizzle wraps driver errors) cancelled by statement_timeout. */
export function isStatementTimeout(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if ((e as { code?: unknown }).code === QUERY_CANCELED) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
