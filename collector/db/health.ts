import { sql } from 'drizzle-orm';
import type { Queryable } from './open.ts';

/** Throws when the database does not answer. */
export async function ping(q: Queryable): Promise<void> {
  await q.execute(sql`select 1`);
}
