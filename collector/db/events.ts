/** Events as received: one bulk insert per batch, idempotent on (probe_id, event_id). */
import { sql } from 'drizzle-orm';
import { describeDataError, isDataError } from './errors.ts';
import { type Queryable, rows } from './open.ts';

export interface EventRow {
  eventId: string;
  probeId: string;
  requestId: string;
  signature: string;
  type: 'sent' | 'rejected' | 'failed' | 'received';
  platform: string;
  accountId: string;
  conversation: string;
  canaryId: string | null;
  nonce: string | null;
  /** Probe clock, RFC 3339. */
  at: string;
  clockOffsetMs: number;
  /** The event's JSON text. */
  raw: string;
}

/**
 * How long before its canary was made an event of that canary may have been received: none
 * can be (a canary is sent after it is planned, and received_at and created_at are the same
 * database's clock); the margin covers a clock stepped back (decision 020).
 */
export const RECEIVED_BEFORE_CANARY_MARGIN_MS = 7 * 86_400_000;

/** The margin as an SQL interval, for bounds computed in a query. */
export const RECEIVED_BEFORE_CANARY_MARGIN = sql.raw(
  `interval '${RECEIVED_BEFORE_CANARY_MARGIN_MS} milliseconds'`,
);

/**
 * `e.received_at` bounded by when canary `c` was made: in a read of one canary's events
 * (aliases `e` and `c`), it lets Postgres skip the months before its canary (decision 039).
 */
export const RECEIVED_SINCE_CANARY = sql`e.received_at >= c.created_at - ${RECEIVED_BEFORE_CANARY_MARGIN}`;

/**
 * Inserts the events whose id is new for their probe; returns the ids actually stored.
 * All rows of one call belong to one probe (one signed batch). `events` is partitioned by
 * month of received_at (decision 039), so its key holds received_at and cannot see a copy
 * stored in an earlier month: an id is new when no stored event of the probe has it, looked
 * for in the months from `since` on (null: every month). The caller holds what serialises
 * writers of the same event (the canary locks, or the look-alike bound's lock per probe),
 * so two batches with one event cannot both find it new. One statement per batch,
 * its rows sent as one JSON document (each event's JSON text spliced in as it is), read by
 * json_to_recordset: no array literal of escaped texts to build here and parse there, and
 * each event's JSON parsed once (decision 023).
 */
export async function insertEvents(
  q: Queryable,
  events: EventRow[],
  since: Date | null = null,
): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const doc = `[${events
    .map((e) => {
      const cols = JSON.stringify({
        event_id: e.eventId,
        probe_id: e.probeId,
        request_id: e.requestId,
        signature: e.signature,
        type: e.type,
        platform: e.platform,
        account_id: e.accountId,
        conversation: e.conversation,
        canary_id: e.canaryId,
        nonce: e.nonce,
        at: e.at,
        clock_offset_ms: e.clockOffsetMs,
      });
      return `${cols.slice(0, -1)},"raw":${e.raw}}`;
    })
    .join(',')}]`;
  const stored = await rows<{ event_id: string }>(
    q,
    sql`insert into events (event_id, probe_id, request_id, signature, type, platform, account_id,
          conversation, canary_id, nonce, at, clock_offset_ms, raw)
        select e.event_id, e.probe_id, e.request_id, e.signature, e.type, e.platform, e.account_id,
          e.conversation, e.canary_id, e.nonce, e.at, e.clock_offset_ms, e.raw
        from json_to_recordset(${doc}::json)
          as e(event_id uuid, probe_id uuid, request_id uuid, signature text, type text, platform text,
               account_id uuid, conversation text, canary_id uuid, nonce text, at timestamptz,
               clock_offset_ms float8, raw jsonb)
        where not exists (select 1 from events x
          where x.probe_id = e.probe_id and x.event_id = e.event_id
            and x.received_at >= ${since === null ? '-infinity' : since.toISOString()}::timestamptz)
        on conflict (probe_id, event_id, received_at) do nothing
        returning event_id`,
  );
  return new Set(stored.map((r) => r.event_id));
}

/**
 * Receipts of nonces that are no canary of ours this probe reported since `since` (collector
 * clock): what the bound on look-alike receipts counts (partial index events_unknown_nonce_idx).
 */
export type InsertResult = { status: 'stored' | 'duplicate' } | { status: 'refused'; reason: string };

/**
 * Inserts like insertEvents, but a data error (SQLSTATE class 22 or 23: a value Postgres
 * cannot hold) does not fail the batch: the insert runs in a savepoint, and a failing set
 * of rows is split in halves until each failing row is alone and refused; the others are
 * stored. Runs inside the caller's transaction, so nothing is durable (or acknowledged)
 * before that commits, and each row is inserted at most once per probe. At most 2n − 1
 * inserts for n rows. Results are in `events` order.
 */
export async function insertEventsBisecting(
  q: Queryable,
  events: EventRow[],
  since: Date | null = null,
): Promise<InsertResult[]> {
  const results: InsertResult[] = events.map(() => ({ status: 'duplicate' }));
  const attempt = async (from: number, to: number): Promise<void> => {
    if (from >= to) return;
    const part = events.slice(from, to);
    try {
      const stored = await q.transaction((sp) => insertEvents(sp, part, since));
      part.forEach((e, i) => {
        results[from + i] = { status: stored.has(e.eventId) ? 'stored' : 'duplicate' };
      });
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (to - from === 1) {
        results[from] = { status: 'refused', reason: `the database refused it (${describeDataError(err)})` };
        return;
      }
      const mid = from + Math.ceil((to - from) / 2);
      await attempt(from, mid);
      await attempt(mid, to);
    }
  };
  await attempt(0, events.length);
  return results;
}

/** Serialises the bound on look-alike receipts per probe (the count, then the insert). */
export async function lockUnknownNonceBound(q: Queryable, probeId: string): Promise<void> {
  await q.execute(sql`select pg_advisory_xact_lock(hashtextextended('unknown-nonce:' || ${probeId}, 0))`);
}

export async function countUnknownNonceReceipts(q: Queryable, probeId: string, since: Date): Promise<number> {
  const [row] = await rows<{ n: number }>(
    q,
    sql`select count(*)::int as n from events
        where probe_id = ${probeId}::uuid and type = 'received' and canary_id is null
          and received_at >= ${since.toISOString()}::timestamptz`,
  );
  return row?.n ?? 0;
}

/** The key of StoredFacts.kept (collector/db/outcomes.ts loadFacts): events per canary, account and type. */
export const copiesKey = (canaryId: string, accountId: string, type: string) =>
  `${canaryId} ${accountId} ${type}`;

export async function countEvents(q: Queryable): Promise<number> {
  const [row] = await rows<{ n: number }>(q, sql`select count(*)::int as n from events`);
  return row?.n ?? 0;
}
