/**
 * Storage for the retention of raw events (the rules are in collector/retention.ts,
 * decision 017). Every statement is bounded by a batch size and served by a partial index:
 * canaries_unpruned_deadline_idx, canaries_late_events_idx, events_lookalike_received_at_idx,
 * and events_canary_idx for the deletes. Row locks are taken `skip locked`, so several
 * collectors on one database can run the job at once without waiting on each other.
 */
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import { sameDeadlineInSubquery } from './partitions.ts';

export interface PrunedBatch {
  /** Canaries marked pruned in this batch. */
  canaries: number;
  /** Their events deleted. */
  events: number;
  /** Canaries the batch found but left for a later run (outcome derivation held them). */
  skipped: number;
}

/**
 * One batch: up to `limit` canaries whose deadline is before `cutoff`, whose outcomes are
 * all final (none `pending`) and whose events are still kept. Deletes their events and
 * sets events_pruned_at. Run it in a transaction.
 *
 * A canary is taken only when its outcome-derivation lock (db/outcomes.ts lockCanaries, the
 * same advisory key) is free at that moment: pruning and re-deriving one canary never
 * interleave, and the job never waits on ingest (pg_try_advisory_xact_lock). A canary whose
 * lock is held is counted in `skipped` and taken by a later run.
 */
export async function pruneCanaryBatch(
  q: Queryable,
  cutoff: Date,
  limit: number,
  now: Date,
): Promise<PrunedBatch> {
  // `for no key update`: the outcomes' foreign key takes `for key share` on the canary while
  // ingest upserts them; that must not wait on us.
  const picked = await rows<{ id: string }>(
    q,
    sql`select c.id from canaries c
        where c.events_pruned_at is null and c.deadline_at < ${cutoff.toISOString()}::timestamptz
          and not exists (select 1 from outcomes o where o.canary_id = c.id and ${sameDeadlineInSubquery('o', 'c')}
            and o.status = 'pending')
        order by c.deadline_at
        limit ${limit}
        for no key update of c skip locked`,
  );
  if (picked.length === 0) return { canaries: 0, events: 0, skipped: 0 };
  const ids = picked.map((p) => p.id).sort();
  const locked = await rows<{ id: string }>(
    q,
    sql`select t.id::text as id from unnest(${sql.param(ids)}::uuid[]) with ordinality as t(id, n)
        where pg_try_advisory_xact_lock(hashtextextended(t.id::text, 0))
        order by t.n`,
  );
  if (locked.length === 0) return { canaries: 0, events: 0, skipped: picked.length };
  const lockedIds = sql.param(locked.map((l) => l.id));
  const deleted = await rows<{ n: number }>(
    q,
    sql`with d as (delete from events where canary_id = any(${lockedIds}::uuid[]) returning 1)
        select count(*)::int as n from d`,
  );
  await q.execute(
    sql`update canaries set events_pruned_at = ${now.toISOString()}::timestamptz
        where id = any(${lockedIds}::uuid[])`,
  );
  return { canaries: locked.length, events: deleted[0]?.n ?? 0, skipped: picked.length - locked.length };
}

/**
 * Events of pruned canaries that arrived after pruning (ingest flags the canary with
 * late_events_at): deletes them for up to `limit` canaries and clears the flag; returns how
 * many events. Run it in a transaction. Ingest sets the flag again if another arrives.
 */
export async function pruneLateEventsBatch(
  q: Queryable,
  limit: number,
): Promise<{ canaries: number; events: number }> {
  const picked = await rows<{ id: string }>(
    q,
    sql`select id from canaries where late_events_at is not null
        order by late_events_at limit ${limit}
        for no key update skip locked`,
  );
  if (picked.length === 0) return { canaries: 0, events: 0 };
  const ids = sql.param(picked.map((p) => p.id));
  const deleted = await rows<{ n: number }>(
    q,
    sql`with d as (delete from events where canary_id = any(${ids}::uuid[]) returning 1)
        select count(*)::int as n from d`,
  );
  await q.execute(sql`update canaries set late_events_at = null where id = any(${ids}::uuid[])`);
  return { canaries: picked.length, events: deleted[0]?.n ?? 0 };
}

/**
 * Ingest stored events for these canaries, which are pruned: flags them (late_events_at) so
 * the job deletes those events.
 */
export async function flagLateEvents(q: Queryable, canaryIds: string[], now: Date): Promise<void> {
  if (canaryIds.length === 0) return;
  await q.execute(
    sql`update canaries set late_events_at = coalesce(late_events_at, ${now.toISOString()}::timestamptz)
        where id = any(${sql.param(canaryIds)}::uuid[]) and events_pruned_at is not null`,
  );
}

/**
 * Up to `limit` receipts of nonces that are no canary of ours (look-alikes) received
 * before `cutoff`: deleted; returns how many.
 */
export async function pruneLookAlikeBatch(q: Queryable, cutoff: Date, limit: number): Promise<number> {
  const deleted = await rows<{ n: number }>(
    q,
    sql`with old as (
          select probe_id, event_id from events
          where type = 'received' and canary_id is null
            and received_at < ${cutoff.toISOString()}::timestamptz
          order by received_at limit ${limit}
          for update skip locked),
        d as (delete from events e using old
              where e.probe_id = old.probe_id and e.event_id = old.event_id returning 1)
        select count(*)::int as n from d`,
  );
  return deleted[0]?.n ?? 0;
}

export interface PrunablePreview {
  canaries: number;
  canaryEvents: number;
  lookAlikes: number;
  /** A count reached the cap: there are at least that many. */
  capped: boolean;
}

/**
 * What a run would prune now (a dry run): canaries past `canaryCutoff` with final outcomes
 * and their events, and look-alike receipts before `lookAlikeCutoff` (null: that kind is
 * kept). Each count stops at `cap` rows, so it is bounded like the job's batches.
 */
export async function countPrunable(
  q: Queryable,
  canaryCutoff: Date | null,
  lookAlikeCutoff: Date | null,
  cap: number,
): Promise<PrunablePreview> {
  const [c] = canaryCutoff
    ? await rows<{ canaries: number; events: number }>(
        q,
        sql`with picked as (
              select c.id from canaries c
              where c.events_pruned_at is null and c.deadline_at < ${canaryCutoff.toISOString()}::timestamptz
                and not exists (select 1 from outcomes o where o.canary_id = c.id and ${sameDeadlineInSubquery('o', 'c')}
            and o.status = 'pending')
              limit ${cap})
            select (select count(*)::int from picked) as canaries,
              (select count(*)::int from events e join picked p on p.id = e.canary_id) as events`,
      )
    : [];
  const [l] = lookAlikeCutoff
    ? await rows<{ n: number }>(
        q,
        sql`select count(*)::int as n from (
              select 1 from events
              where type = 'received' and canary_id is null
                and received_at < ${lookAlikeCutoff.toISOString()}::timestamptz
              limit ${cap}) l`,
      )
    : [];
  const canaries = c?.canaries ?? 0;
  const lookAlikes = l?.n ?? 0;
  return {
    canaries,
    canaryEvents: c?.events ?? 0,
    lookAlikes,
    capped: canaries >= cap || lookAlikes >= cap,
  };
}
