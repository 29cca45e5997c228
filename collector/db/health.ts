import { sql } from 'drizzle-orm';
import type { Queryable } from './open.ts';
import { PGliteWorkerClient } from './pglite-client.ts';

/**
 * Throws when the database does not answer. Embedded PGlite is one connection in a
 * worker thread: there the check asks whether the thread is alive and making progress,
 * instead of queueing a `select 1` behind a long sweep (decision 013).
 */
export async function ping(q: Queryable): Promise<void> {
  const client = (q as { $client?: unknown }).$client;
  if (client instanceof PGliteWorkerClient) return client.health();
  await q.execute(sql`select 1`);
}
